"""Keeps card numbers, CVCs and secret keys out of every log line.

Installed as a filter on the root handlers by the portal and the worker, so a
careless ``log.info(payload)`` anywhere still cannot leak them.
"""
from __future__ import annotations

import logging
import re

_PATTERNS = [
    # Card numbers: 13-19 digits, optionally grouped by spaces, dashes or "+" (a form-encoded space).
    (re.compile(r"\b(?:\d[ +-]?){12,18}\d\b"), "[card number redacted]"),
    # Stripe secret and restricted keys, webhook secrets.
    (re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+"), "[secret key redacted]"),
    (re.compile(r"\bwhsec_[A-Za-z0-9_]+"), "[webhook secret redacted]"),
    # The portal's own API tokens (kbp_) and gateway service keys (kgw_); bearer credentials of any kind.
    (re.compile(r"\bk(?:bp|gw)_[A-Za-z0-9_-]{8,}"), "[api key redacted]"),
    (re.compile(r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[redacted]"),
    # CVC in JSON, Python reprs and form-encoded payloads (card[cvc]=, or card%5Bcvc%5D= as the SDK logs it).
    (re.compile(r"(?i)(cvc|cvv)((?:\]|%5D)?[\"'\s:=+]{1,8})\d{3,4}\b"), r"\1\2[redacted]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Attach the filter to every handler of ``logger`` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())

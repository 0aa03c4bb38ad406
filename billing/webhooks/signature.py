"""Checking Stripe's ``Stripe-Signature`` header on the raw request body.

Stripe signs ``"<timestamp>.<body>"`` with HMAC-SHA256 under the endpoint's secret
and sends ``t=<timestamp>,v1=<hex>[,v1=<hex>...]``. We accept the signature when
any ``v1`` matches under any of our secrets (several during a key rotation) and
the timestamp is within the tolerance, so a captured request cannot be replayed
days later. Comparison is constant-time. The SDK is not used: the check is ten
lines, runs on every delivery, and ``billing`` keeps ``stripe`` inside the gateway.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Iterable, Optional

TOLERANCE_SECONDS = 300
SCHEME = "v1"


class SignatureError(ValueError):
    """The request is not a delivery signed by Stripe with one of our secrets; ``reason`` names why."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def compute(secret: str, payload: bytes, timestamp: int) -> str:
    """The hex ``v1`` signature of ``payload`` sent at ``timestamp``."""
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def header_for(secret: str, payload: bytes, timestamp: Optional[int] = None) -> str:
    """A ``Stripe-Signature`` header as Stripe would send it (tests and the benchmark sign with this)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},{SCHEME}={compute(secret, payload, timestamp)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: Optional[int] = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("malformed_signature", "the timestamp is not a number") from None
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("malformed_signature", "no timestamp in the signature header")
    if not signatures:
        raise SignatureError("malformed_signature", f"no {SCHEME} signature in the header")
    return timestamp, signatures


def verify(payload: bytes, header: Optional[str], secrets: Iterable[str], *,
           tolerance: int = TOLERANCE_SECONDS, now: Optional[float] = None) -> int:
    """Raise ``SignatureError`` unless ``header`` signs ``payload`` under one of ``secrets``; returns its timestamp."""
    if not header:
        raise SignatureError("missing_signature", "no Stripe-Signature header")
    timestamp, signatures = _parse(header)
    candidates = [secret for secret in secrets if secret]
    if not candidates:
        raise SignatureError("no_secret", "no webhook secret is configured")
    # Compare against every secret and every signature without stopping early:
    # the time taken must not tell an attacker which part matched.
    matched = False
    for secret in candidates:
        expected = compute(secret, payload, timestamp)
        for signature in signatures:
            matched |= hmac.compare_digest(expected, signature)
    if not matched:
        raise SignatureError("bad_signature", "no signature matches a configured secret")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("stale_signature", f"the signature is more than {tolerance} s old")
    return timestamp

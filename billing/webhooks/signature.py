"""Checking Stripe's ``Stripe-Signature`` header on the raw request body.

Stripe signs ``"<timestamp>.<body>"`` with HMAC-SHA256 under the endpoint's secret
and sends ``t=<timestamp>,v1=<hex>[,v1=<hex>...]``. The signature itself is checked
by the SDK's ``WebhookSignature.verify_header`` (through the gateway module, the only
one that imports ``stripe``), once per configured secret: any match under any of them
is enough (several during a key rotation). Around it, what the SDK does not do here:
a clear reason for each refusal, and a timestamp bound both ways (the SDK only
refuses old ones), so a captured request cannot be replayed later.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Iterable, Optional

from billing.errors import BillingError
from billing.gateway.stripe_gateway import webhook_signature_matches

TOLERANCE_SECONDS = 300
SCHEME = "v1"


class SignatureError(BillingError, ValueError):
    """The request is not a delivery signed by Stripe with one of our secrets; ``reason`` names why."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def compute(secret: str, payload: bytes, timestamp: int) -> str:
    """The hex ``v1`` signature of ``payload`` sent at ``timestamp`` (for signing: tests, the benchmark)."""
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def header_for(secret: str, payload: bytes, timestamp: Optional[int] = None) -> str:
    """A ``Stripe-Signature`` header as Stripe would send it (tests and the benchmark sign with this)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},{SCHEME}={compute(secret, payload, timestamp)}"


def _timestamp(header: str) -> int:
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep and key == "t":
            try:
                return int(value)
            except ValueError:
                raise SignatureError("malformed_signature", "the timestamp is not a number") from None
    raise SignatureError("malformed_signature", "no timestamp in the signature header")


def verify(payload: str | bytes, header: Optional[str], secrets: Iterable[str], *,
           tolerance: int = TOLERANCE_SECONDS, now: Optional[float] = None) -> int:
    """Raise ``SignatureError`` unless ``header`` signs ``payload`` (the body, as text or its UTF-8 bytes) under one
    of ``secrets``; returns its timestamp."""
    if not header:
        raise SignatureError("missing_signature", "no Stripe-Signature header")
    timestamp = _timestamp(header)
    if f"{SCHEME}=" not in header:
        raise SignatureError("malformed_signature", f"no {SCHEME} signature in the header")
    candidates = [secret for secret in secrets if secret]
    if not candidates:
        raise SignatureError("no_secret", "no webhook secret is configured")
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    except UnicodeDecodeError:  # Stripe signs UTF-8 JSON: these bytes were never signed by it
        raise SignatureError("bad_signature", "no signature matches a configured secret") from None
    if not any(webhook_signature_matches(text, header, secret) for secret in candidates):
        raise SignatureError("bad_signature", "no signature matches a configured secret")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("stale_signature", f"the signature is more than {tolerance} s old")
    return timestamp

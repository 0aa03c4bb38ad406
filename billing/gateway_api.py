"""The Billing Gateway API's rules, without Flask (the blueprint is ``portal/gateway_api``).

Tokenize, authorize, capture and refund for server-to-server clients holding a
service key of one app. Amounts arrive as decimal strings and become ``Money``
here, through ``Money.parse`` and the currency's exponent; answers carry them back
as decimal strings. Idempotency follows Stripe's model: the first request with a
key claims a row *before* the gateway is called (committed, so no transaction is
held across the call); a repeat with the same body gets the stored answer, one with
another body a 409, and a racing twin waits for the first answer instead of
calling the gateway again.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Mapping, Optional

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing import clock
from billing.errors import BillingError
from billing.models import (
    GatewayAuthorization,
    GatewayCapture,
    GatewayIdempotencyKey,
    GatewayToken,
    RefundRequest,
)
from billing.money import CURRENCY_EXPONENTS, Money, MoneyError

# Stripe keeps keys 24 hours; we keep ours at least that long, and purge later (jobs or CLI).
IDEMPOTENCY_RETENTION = timedelta(hours=48)
# A claim whose request died (the process was killed mid-call) is taken over after this long;
# the gateway call carries a key derived from the request, so calling again cannot charge twice.
STALE_CLAIM = timedelta(minutes=2)
RACE_WAIT_SECONDS = 10.0
MAX_KEY_LENGTH = 255


class Invalid(BillingError):
    """400: the body breaks the contract; ``fields`` maps each bad field to its message."""

    def __init__(self, fields: Mapping[str, str]):
        super().__init__("; ".join(f"{name}: {message}" for name, message in fields.items()))
        self.fields = dict(fields)


class IdempotencyMismatch(BillingError):
    """409: the key was used before with another body."""


class IdempotencyInProgress(BillingError):
    """409: the first request with this key is still running."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


# ---------------------------------------------------------------- input


class Fields:
    """Reads a JSON object field by field, collecting one message per bad field."""

    def __init__(self, body: Any):
        self.body = body if isinstance(body, dict) else {}
        self.errors: dict[str, str] = {} if isinstance(body, dict) else {"body": "Send a JSON object."}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def text(self, name: str, *, required: bool = True, max_length: int = 255) -> Optional[str]:
        value = self.body.get(name)
        if value is None:
            if required:
                self.fail(name, "This field is required.")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(name, "Must be a non-empty string.")
            return None
        if len(value) > max_length:
            self.fail(name, f"At most {max_length} characters.")
            return None
        return value.strip()

    def boolean(self, name: str, default: bool) -> bool:
        value = self.body.get(name, default)
        if not isinstance(value, bool):
            self.fail(name, "Must be true or false.")
            return default
        return value

    def integer(self, name: str, low: int, high: int) -> Optional[int]:
        value = self.body.get(name)
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(name, f"Must be a whole number from {low} to {high}.")
            return None
        return value

    def currency(self, name: str = "currency", *, required: bool = True) -> Optional[str]:
        value = self.text(name, required=required, max_length=3)
        if value is not None and value.upper() not in CURRENCY_EXPONENTS:
            self.fail(name, f"Unsupported currency; one of {', '.join(sorted(CURRENCY_EXPONENTS))}.")
            return None
        return value.upper() if value else None

    def money(self, currency: Optional[str], name: str = "amount", *, required: bool = True) -> Optional[Money]:
        """A positive decimal string in ``currency``'s precision ("150.00" for BRL)."""
        value = self.body.get(name)
        if value is None:
            if required:
                self.fail(name, "This field is required.")
            return None
        if not isinstance(value, str):
            self.fail(name, 'Send the amount as a decimal string, such as "150.00".')
            return None
        if currency is None:
            return None
        try:
            money = Money.parse(value, currency)
        except MoneyError as error:
            self.fail(name, str(error))
            return None
        if money.amount <= 0:
            self.fail(name, "Must be greater than zero.")
            return None
        if money.amount > 99_999_999:  # Stripe's ceiling for a single charge
            self.fail(name, "Too large.")
            return None
        return money

    def metadata(self, name: str = "metadata") -> dict[str, str]:
        value = self.body.get(name, {})
        if not isinstance(value, dict) or len(value) > 20 or not all(
                isinstance(k, str) and 0 < len(k) <= 40 and isinstance(v, str) and len(v) <= 500
                for k, v in value.items()):
            self.fail(name, "Up to 20 string keys (40 characters) with string values (500 characters).")
            return {}
        return dict(value)

    def check(self) -> None:
        if self.errors:
            raise Invalid(self.errors)


def amount_json(money: Money) -> dict[str, str]:
    return {"amount": money.to_decimal_string(), "currency": money.currency}


# ---------------------------------------------------------------- idempotency


def fingerprint(secret: str, body: Mapping[str, Any]) -> str:
    """A keyed hash of the canonical body: compares requests without keeping what they said."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def _row(session: Session, service_key_id: int, operation: str, key: str) -> Optional[GatewayIdempotencyKey]:
    return session.scalar(select(GatewayIdempotencyKey).where(
        GatewayIdempotencyKey.service_key_id == service_key_id, GatewayIdempotencyKey.operation == operation,
        GatewayIdempotencyKey.key == key))


def claim(session: Session, *, service_key_id: int, operation: str, key: str, request_hash: str,
          wait_seconds: float = RACE_WAIT_SECONDS) -> Optional[Answer]:
    """None when this request now owns ``key`` (go ahead); the stored answer when one was given.

    Commits: the claim must be visible to a racing twin before the gateway is called.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            session.add(GatewayIdempotencyKey(service_key_id=service_key_id, operation=operation, key=key,
                                              request_hash=request_hash))
            session.commit()
            return None
        except IntegrityError:
            session.rollback()
        row = _row(session, service_key_id, operation, key)
        if row is None:
            session.commit()
            continue  # released meanwhile (the first try failed at the provider): claim it again
        if not hmac.compare_digest(row.request_hash, request_hash):
            session.commit()
            raise IdempotencyMismatch("This idempotency_key was used with another request body.")
        if row.response_status is not None:
            answer = Answer(row.response_status, json.loads(row.response_body or "{}"))
            session.commit()
            return answer
        claimed_at = row.created_at
        if clock.now() - claimed_at > STALE_CLAIM:
            taken = session.execute(update(GatewayIdempotencyKey).where(
                GatewayIdempotencyKey.id == row.id, GatewayIdempotencyKey.created_at == claimed_at,
                GatewayIdempotencyKey.response_status.is_(None)).values(created_at=clock.now()))
            session.commit()
            if taken.rowcount == 1:
                return None
            continue
        session.commit()
        if time.monotonic() >= deadline:
            raise IdempotencyInProgress("A request with this idempotency_key is still being processed; retry.")
        time.sleep(0.05)


def complete(session: Session, *, service_key_id: int, operation: str, key: str, answer: Answer) -> None:
    """Store the answer with the claim (in the caller's transaction, with the rows the answer describes)."""
    session.execute(update(GatewayIdempotencyKey).where(
        GatewayIdempotencyKey.service_key_id == service_key_id, GatewayIdempotencyKey.operation == operation,
        GatewayIdempotencyKey.key == key).values(
        response_status=answer.status, response_body=json.dumps(answer.body, sort_keys=True),
        completed_at=clock.now()))


def release(session: Session, *, service_key_id: int, operation: str, key: str) -> None:
    """Give the key back (the provider failed: nothing is known done, a retry may call again). Commits."""
    session.rollback()
    session.execute(delete(GatewayIdempotencyKey).where(
        GatewayIdempotencyKey.service_key_id == service_key_id, GatewayIdempotencyKey.operation == operation,
        GatewayIdempotencyKey.key == key, GatewayIdempotencyKey.response_status.is_(None)))
    session.commit()


def purge_idempotency_keys(session: Session, *, keep: timedelta = IDEMPOTENCY_RETENTION) -> int:
    """Forget answers older than ``keep`` (never less than 24 hours). Returns how many were deleted."""
    keep = max(keep, timedelta(hours=24))
    result = session.execute(delete(GatewayIdempotencyKey).where(
        GatewayIdempotencyKey.created_at < clock.now() - keep))
    return result.rowcount or 0


# ---------------------------------------------------------------- answers


def _iso(value) -> Optional[str]:
    return value.isoformat() if value else None


def new_public_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def token_json(token: GatewayToken) -> dict[str, Any]:
    return {"token_reference": token.token_reference, "gateway": token.gateway, "brand": token.brand,
            "last4": token.last4, "exp_month": token.exp_month, "exp_year": token.exp_year,
            "created_at": _iso(token.created_at)}


def authorization_json(row: GatewayAuthorization, capture: Optional[GatewayCapture]) -> dict[str, Any]:
    return {
        "authorization_id": row.public_id,
        "status": row.status,
        **amount_json(Money(row.amount, row.currency)),
        "capture_pending": capture is None,
        "capture_id": capture.public_id if capture else None,
        "gateway": row.gateway,
        "gateway_reference": row.stripe_payment_intent_id,
        "created_at": _iso(row.created_at),
        "metadata": row.metadata_ or {},
    }


def capture_json(capture: GatewayCapture) -> dict[str, Any]:
    return {
        "capture_id": capture.public_id,
        "authorization_id": capture.authorization.public_id,
        "status": "captured",
        **amount_json(Money(capture.amount, capture.currency)),
        "amount_refunded": Money(capture.amount_refunded, capture.currency).to_decimal_string(),
        "gateway_reference": capture.authorization.stripe_payment_intent_id,
        "created_at": _iso(capture.created_at),
    }


def refund_json(row: RefundRequest) -> dict[str, Any]:
    return {
        "refund_id": row.public_id,
        "capture_id": row.capture.public_id if row.capture else None,
        "status": row.status.value,
        **amount_json(row.money),
        "reason": row.reason,
        "gateway_reference": row.stripe_refund_id,
        "failure": row.failure,
        "created_at": _iso(row.created_at),
        "executed_at": _iso(row.executed_at),
    }


def run_idempotent(session: Session, *, service_key_id: int, operation: str, key: str, request_hash: str,
                   work: Callable[[], Answer], on_provider_failure: Callable[[BaseException], Answer],
                   provider_errors: tuple[type[BaseException], ...]) -> Answer:
    """Claim ``key``, run ``work`` once, store its answer; replay a stored one.

    ``work`` writes its rows and returns the answer without committing; the answer is
    stored in the same transaction. When it raises one of ``provider_errors`` the
    claim is released (nothing is known to be done) and ``on_provider_failure``
    answers.
    """
    stored = claim(session, service_key_id=service_key_id, operation=operation, key=key, request_hash=request_hash)
    if stored is not None:
        return stored
    try:
        answer = work()
    except provider_errors as error:
        release(session, service_key_id=service_key_id, operation=operation, key=key)
        return on_provider_failure(error)
    except BaseException:
        release(session, service_key_id=service_key_id, operation=operation, key=key)
        raise
    complete(session, service_key_id=service_key_id, operation=operation, key=key, answer=answer)
    session.commit()
    return answer


@dataclass
class Context:
    """Who calls, for which app, with which request id (for logs, audit and our reference ids)."""

    app_id: int
    service_key_id: int
    request_id: str
    secret: str  # keys the request fingerprints
    extra: dict[str, Any] = field(default_factory=dict)

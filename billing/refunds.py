"""Refunds operators ask for, under dual control (docs/gateway-api.md, "Refunds").

A refund of an API capture or of an invoice payment is *requested* by a superadmin
or a service key. Above ``approval_above`` (minor units; 0 by default, so every
refund) it waits for a second, different superadmin to approve it; then it is
*executed* against Stripe. Every step is audited and the owner is told when money
goes back.

Refunds never exceed captures: the target row (capture or payment) is locked while
the request is checked and written, and every request not refused or failed
reserves its amount. Stripe is called only after that transaction committed.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing import audit, clock
from billing.audit import Origin
from billing.errors import BillingError, GatewayError, GatewayUnavailable
from billing.gateway.types import Refund
from billing.models import (
    App,
    GatewayCapture,
    KernelPayment,
    KernelRefund,
    RefundRequest,
    RefundStatus,
)
from billing.money import Money
from billing.notifications import NoticeKind, notify_owners
from billing.webhooks.payments import record_refunds

log = logging.getLogger(__name__)

# Requests that hold (or used) part of the captured amount.
RESERVING = (RefundStatus.PENDING_APPROVAL, RefundStatus.EXECUTING, RefundStatus.SUCCEEDED)


class RefundRefused(BillingError):
    """The request breaks a rule; ``field`` names the input it is about (for a per-field 400)."""

    def __init__(self, field: str, message: str, code: str = "refund_refused"):
        super().__init__(message)
        self.field, self.message, self.code = field, message, code


@dataclass(frozen=True)
class Target:
    """What is refunded: an API capture or an invoice payment, with the amounts that bound a refund."""

    app_id: int
    payment_intent_id: str
    currency: str
    captured: int
    refunded_elsewhere: int  # refunds not made through a request (Stripe's dashboard), as mirrored
    capture: Optional[GatewayCapture] = None
    payment: Optional[KernelPayment] = None


def _locked(session: Session, model, row_id: int):
    # FOR UPDATE on PostgreSQL; SQLite's IMMEDIATE transactions already admit one writer at a time.
    return session.scalar(select(model).where(model.id == row_id).with_for_update())


def _target(session: Session, *, capture_id: Optional[int], payment_id: Optional[int]) -> Target:
    if capture_id is not None:
        capture = _locked(session, GatewayCapture, capture_id)
        if capture is None:
            raise RefundRefused("capture_id", "No such capture.", "not_found")
        return Target(capture.app_id, capture.authorization.stripe_payment_intent_id, capture.currency,
                      capture.amount, 0, capture=capture)
    payment = _locked(session, KernelPayment, payment_id) if payment_id is not None else None
    if payment is None or payment.status != "succeeded":
        raise RefundRefused("payment", "There is no captured payment to refund.", "not_refundable")
    return Target(payment.app_id, payment.stripe_payment_intent_id, payment.currency, payment.amount,
                  payment.amount_refunded, payment=payment)


def _reserved(session: Session, target: Target) -> tuple[int, int]:
    """(amount of open requests, amount of succeeded requests) on ``target``."""
    column = RefundRequest.capture_id if target.capture else RefundRequest.payment_id
    row_id = target.capture.id if target.capture else target.payment.id  # type: ignore[union-attr]
    rows = session.execute(select(RefundRequest.status, func.coalesce(func.sum(RefundRequest.amount), 0))
                           .where(column == row_id, RefundRequest.status.in_(RESERVING))
                           .group_by(RefundRequest.status)).all()
    sums = {RefundStatus(status): int(total) for status, total in rows}
    return (sums.get(RefundStatus.PENDING_APPROVAL, 0) + sums.get(RefundStatus.EXECUTING, 0),
            sums.get(RefundStatus.SUCCEEDED, 0))


def refundable(session: Session, target: Target) -> Money:
    """What may still be asked for: captured, less refunds made or waiting.

    A payment's mirrored ``amount_refunded`` includes our own executed refunds once
    their webhook arrived, so the larger of the two is what is already gone.
    """
    open_amount, succeeded = _reserved(session, target)
    gone = max(target.refunded_elsewhere, succeeded)
    return Money(max(target.captured - gone - open_amount, 0), target.currency)


def refundable_of_payment(session: Session, payment: KernelPayment) -> Money:
    """For pages: what a new request on ``payment`` may ask for (no lock taken)."""
    if payment.status != "succeeded":
        return Money(0, payment.currency)
    target = Target(payment.app_id, payment.stripe_payment_intent_id, payment.currency, payment.amount,
                    payment.amount_refunded, payment=payment)
    return refundable(session, target)


def request_refund(session: Session, *, capture_id: Optional[int] = None, payment_id: Optional[int] = None,
                   amount: Optional[Money], reason: str, origin: Origin, approval_above: int,
                   requested_by_key_id: Optional[int] = None) -> RefundRequest:
    """Write a refund request (the caller commits, then calls ``execute`` when its status is EXECUTING).

    ``amount`` None refunds everything still refundable. Raises ``RefundRefused``.
    """
    reason = (reason or "").strip()
    if not reason:
        raise RefundRefused("reason", "Say why the money goes back.", "reason_required")
    target = _target(session, capture_id=capture_id, payment_id=payment_id)
    available = refundable(session, target)
    if amount is None:
        amount = available
    if amount.currency != target.currency:
        raise RefundRefused("currency", f"The payment is in {target.currency}.", "currency_mismatch")
    if amount.amount <= 0:
        if available.amount <= 0:
            raise RefundRefused("amount", "Nothing is left to refund.", "nothing_to_refund")
        raise RefundRefused("amount", "The amount must be greater than zero.", "invalid_amount")
    if amount.amount > available.amount:
        raise RefundRefused("amount", f"At most {available.to_decimal_string()} {available.currency} can still be "
                                      "refunded.", "amount_above_captured")
    needs_approval = amount.amount > approval_above
    row = RefundRequest(
        public_id=f"rfr_{uuid.uuid4().hex[:24]}", app_id=target.app_id, capture_id=capture_id,
        payment_id=target.payment.id if target.payment else None, stripe_payment_intent_id=target.payment_intent_id,
        amount=amount.amount, currency=amount.currency, reason=reason[:2000],
        status=RefundStatus.PENDING_APPROVAL if needs_approval else RefundStatus.EXECUTING,
        requested_by_user_id=origin.actor_user_id, requested_by_key_id=requested_by_key_id,
    )
    session.add(row)
    session.flush()
    _audit(session, row, "refund.requested", None, origin,
           extra={"reason": row.reason, "needs_approval": needs_approval,
                  "payment_intent": row.stripe_payment_intent_id})
    return row


def approve(session: Session, request_id: int, *, origin: Origin) -> RefundRequest:
    """A second superadmin's yes: the request moves to EXECUTING (the caller commits, then ``execute``)."""
    row = _locked(session, RefundRequest, request_id)
    if row is None:
        raise RefundRefused("refund", "No such refund request.", "not_found")
    if row.status != RefundStatus.PENDING_APPROVAL:
        raise RefundRefused("refund", "This refund is no longer waiting for approval.", "not_pending")
    if origin.actor_user_id is None or origin.actor_user_id == row.requested_by_user_id:
        raise RefundRefused("refund", "Another superadmin must approve a refund you requested.", "same_person")
    _decide(session, row, RefundStatus.EXECUTING, origin, "refund.approved")
    return row


def refuse(session: Session, request_id: int, *, origin: Origin, note: str = "") -> RefundRequest:
    """No: the request ends and its amount is free again (the requester may also withdraw it)."""
    row = _locked(session, RefundRequest, request_id)
    if row is None:
        raise RefundRefused("refund", "No such refund request.", "not_found")
    if row.status != RefundStatus.PENDING_APPROVAL:
        raise RefundRefused("refund", "This refund is no longer waiting for approval.", "not_pending")
    row.decision_note = note.strip()[:2000] or None
    _decide(session, row, RefundStatus.REFUSED, origin, "refund.refused")
    return row


def _decide(session: Session, row: RefundRequest, status: RefundStatus, origin: Origin, action: str) -> None:
    before = row.status
    row.status = status
    row.decided_by_user_id = origin.actor_user_id
    row.decided_at = clock.now()
    _audit(session, row, action, before, origin, extra={"note": row.decision_note} if row.decision_note else None)


def execute(session: Session, gateway, request_id: int, *, origin: Origin,
            smtp_configured: bool = False) -> RefundRequest:
    """Ask Stripe for an approved refund, then record the outcome.

    Safe to call again for a request left EXECUTING (Stripe was unreachable): the
    idempotency key names the request, so Stripe refunds once whatever the number
    of calls. Raises ``GatewayUnavailable`` when the outcome is unknown.
    """
    row = session.get(RefundRequest, request_id)
    if row is None or row.status != RefundStatus.EXECUTING:
        return row
    payment_intent, money, public_id = row.stripe_payment_intent_id, row.money, row.public_id
    session.commit()  # no transaction stays open across the call to Stripe
    try:
        refund = gateway.create_refund(payment_intent_id=payment_intent, reference=public_id, amount=money)
    except GatewayUnavailable:
        log.warning("refund %s: Stripe unreachable, left executing for a retry", public_id)
        raise
    except GatewayError as error:
        row = _locked(session, RefundRequest, request_id)
        if row.status == RefundStatus.EXECUTING:
            row.status = RefundStatus.FAILED
            row.failure = f"{error.code or 'refused'}: {error.message}"[:2000]
            _audit(session, row, "refund.failed", RefundStatus.EXECUTING, origin, extra={"failure": row.failure})
        return row
    row = _locked(session, RefundRequest, request_id)
    if row.status == RefundStatus.EXECUTING:
        _record_success(session, row, refund, origin, smtp_configured)
    return row


def _record_success(session: Session, row: RefundRequest, refund: Refund, origin: Origin,
                    smtp_configured: bool) -> None:
    row.status = RefundStatus.SUCCEEDED
    row.stripe_refund_id = refund.id
    row.executed_at = clock.now()
    if row.capture is not None:
        capture = _locked(session, GatewayCapture, row.capture_id)
        capture.amount_refunded = min(capture.amount_refunded + row.amount, capture.amount)
    elif row.payment is not None:
        payment = _locked(session, KernelPayment, row.payment_id)
        known = session.scalar(select(KernelRefund.id).where(KernelRefund.stripe_refund_id == refund.id))
        # The charge.refunded webhook may have mirrored this refund already; then the total includes it.
        total = payment.amount_refunded if known else payment.amount_refunded + row.amount
        record_refunds(session, payment, [(refund, None)], amount_refunded=total, origin=origin)
    _audit(session, row, "refund.executed", RefundStatus.EXECUTING, origin, extra={"stripe_refund": refund.id})
    app = session.get(App, row.app_id)
    notify_owners(
        session, app, kind=NoticeKind.REFUND_EXECUTED,
        data={"amount": row.amount, "currency": row.currency, "refund": refund.id},
        dedupe_key=f"refund:{row.public_id}:executed", smtp_configured=smtp_configured,
    )


def _audit(session: Session, row: RefundRequest, action: str, before: Optional[RefundStatus], origin: Origin,
           extra: Optional[dict] = None) -> None:
    after = {"status": row.status.value, "amount": row.amount, "currency": row.currency, **(extra or {})}
    audit.record(session, action=action, object_type="refund_request", object_id=row.public_id, app_id=row.app_id,
                 before={"status": before.value} if before else None, after=after, origin=origin)

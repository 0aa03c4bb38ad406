"""Payments and refunds mirrored from Stripe into ``kernel_payments`` and ``kernel_refunds``.

A PaymentIntent can be reported by several events (``payment_intent.succeeded``,
``invoice.paid``, ``charge.refunded``) in any order and twice; each of them upserts
the same row by its PaymentIntent id and only moves it forward: a succeeded payment
never goes back to failed, the refunded amount only grows, an invoice link once
known is kept.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing import audit, payment_outcomes
from billing.audit import Origin
from billing.db import insert_once, insert_or_load
from billing.gateway.types import PaymentIntent, Refund, ts
from billing.models import App, KernelInvoice, KernelPayment, KernelRefund
from billing.sync import snapshot

PAYMENT_FIELDS = ("status", "amount", "amount_refunded", "currency", "failure_code", "invoice_id", "stripe_charge_id")
SUCCEEDED = "succeeded"


def payment_for(session: Session, payment_intent_id: str) -> Optional[KernelPayment]:
    return session.scalar(select(KernelPayment).where(KernelPayment.stripe_payment_intent_id == payment_intent_id))


_UNREAD: Any = object()


def upsert_payment(session: Session, app: App, intent: PaymentIntent, *, observed_at: int, origin: Origin,
                   invoice: Optional[KernelInvoice] = None, paid_at: Optional[datetime] = None,
                   existing: Optional[KernelPayment] = _UNREAD) -> KernelPayment:
    """Record what Stripe says about ``intent``; never moves a payment backwards.

    ``existing``: the caller's ``payment_for(session, intent.id)`` in this transaction, not read again."""
    succeeded = intent.status == SUCCEEDED
    amount = intent.amount_received if succeeded and intent.amount_received else intent.amount
    row = payment_for(session, intent.id) if existing is _UNREAD else existing
    before = None
    if row is None:
        # Another worker may insert the same PaymentIntent meanwhile: then theirs is updated.
        row, created = insert_or_load(session, KernelPayment(
            app_id=app.id, stripe_payment_intent_id=intent.id, amount=amount, amount_refunded=0,
            currency=intent.currency, status=intent.status, stripe_watermark=observed_at),
            select(KernelPayment).where(KernelPayment.stripe_payment_intent_id == intent.id))
        if not created:
            before = snapshot(row, PAYMENT_FIELDS)
    else:
        before = snapshot(row, PAYMENT_FIELDS)

    already_succeeded = row.status == SUCCEEDED
    newer = observed_at >= (row.stripe_watermark or 0)
    if succeeded or (newer and not already_succeeded):
        row.status = intent.status
        row.amount = max(amount, row.amount_refunded)
        row.currency = intent.currency
        row.failure_code = None if succeeded else intent.last_error_code
        row.stripe_watermark = max(row.stripe_watermark or 0, observed_at)
    if succeeded and row.paid_at is None:
        row.paid_at = paid_at or ts(observed_at)
    if invoice is not None and row.invoice_id is None:
        row.invoice_id = invoice.id
    if intent.latest_charge and row.stripe_charge_id is None:
        row.stripe_charge_id = intent.latest_charge

    payment_outcomes.record_attempt(session, row.app_id, intent, observed_at=observed_at,
                                    correlation_id=origin.correlation_id)
    after = snapshot(row, PAYMENT_FIELDS)
    if before != after:
        session.flush()
        audit.record(session, action="payment.recorded" if before is None else "payment.updated",
                     object_type="kernel_payment", object_id=intent.id, app_id=row.app_id, before=before,
                     after=after, origin=origin)
    return row


def payment_from_charge(session: Session, app: App, charge: Mapping[str, Any], *, origin: Origin) -> KernelPayment:
    """The payment a refunded charge belongs to, created from the charge when no event told us of it yet."""
    intent_id = charge.get("payment_intent")
    if isinstance(intent_id, Mapping):
        intent_id = intent_id.get("id")
    row = payment_for(session, intent_id) if intent_id else None
    if row is None and charge.get("id"):
        row = session.scalar(select(KernelPayment).where(KernelPayment.stripe_charge_id == charge["id"]))
    if row is not None:
        return row
    intent = PaymentIntent(
        id=intent_id or charge["id"], status=SUCCEEDED, amount=int(charge.get("amount") or 0),
        amount_capturable=0, amount_received=int(charge.get("amount_captured") or charge.get("amount") or 0),
        currency=(charge.get("currency") or "").upper(), customer=None, payment_method=None,
        capture_method="automatic", latest_charge=charge.get("id"), last_error_code=None, metadata={})
    created = int(charge.get("created") or 0)
    return upsert_payment(session, app, intent, observed_at=created, origin=origin, paid_at=ts(created))


def record_refunds(session: Session, payment: KernelPayment, refunds: list[tuple[Refund, Optional[int]]], *,
                   amount_refunded: int, origin: Origin) -> int:
    """Upsert each refund of ``payment`` and raise its refunded amount; returns how many refunds were new."""
    new = 0
    for refund, created in refunds:
        row = session.scalar(select(KernelRefund).where(KernelRefund.stripe_refund_id == refund.id))
        if row is None:
            row = KernelRefund(app_id=payment.app_id, payment_id=payment.id, stripe_refund_id=refund.id,
                               amount=refund.amount, currency=refund.currency or payment.currency,
                               status=refund.status)
            if created:
                row.created_at = ts(created)
            if not insert_once(session, row):  # recorded meanwhile by another delivery
                continue
            new += 1
            audit.record(session, action="refund.recorded", object_type="kernel_refund", object_id=refund.id,
                         app_id=payment.app_id, before=None,
                         after={"amount": refund.amount, "currency": row.currency, "status": refund.status,
                                "payment_intent": payment.stripe_payment_intent_id},
                         origin=origin)
        elif row.status != refund.status:
            before = {"status": row.status}
            row.status = refund.status
            audit.record(session, action="refund.updated", object_type="kernel_refund", object_id=refund.id,
                         app_id=payment.app_id, before=before, after={"status": refund.status},
                         origin=origin)

    # Refunds only accumulate, so the largest amount seen is the newest, whatever the delivery order.
    refunded = min(max(payment.amount_refunded, amount_refunded), payment.amount)
    if refunded != payment.amount_refunded:
        before = {"amount_refunded": payment.amount_refunded}
        payment.amount_refunded = refunded
        audit.record(session, action="payment.refunded", object_type="kernel_payment",
                     object_id=payment.stripe_payment_intent_id, app_id=payment.app_id, before=before,
                     after={"amount_refunded": refunded, "currency": payment.currency},
                     origin=origin)
    return new

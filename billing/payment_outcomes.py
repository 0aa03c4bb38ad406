"""Each charge attempt's outcome, recorded once, where Stripe's answer is applied (``upsert_payment``).

A charge attempt is one Stripe charge: a PaymentIntent that fails and is retried
has one failed charge per failure and then a succeeded one. Keying the record by
the charge id makes it count once however many events report it
(``payment_intent.payment_failed``, ``invoice.paid``, a redelivery) and in any
order. The failure-rate alert, the payment counters of ``/metrics`` and the
snapshots all count these rows.
"""
from __future__ import annotations

import logging
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.db import insert_once
from billing.gateway.types import PaymentIntent, ts
from billing.models import AppSubscription, KernelPlan, PaymentOutcome

log = logging.getLogger(__name__)

SUCCEEDED = "succeeded"
FAILED = "failed"


def _outcome(intent: PaymentIntent) -> Optional[str]:
    if intent.status == SUCCEEDED:
        return SUCCEEDED
    if intent.last_error_code or (intent.status == "requires_payment_method" and intent.latest_charge):
        return FAILED
    return None  # not an outcome yet: processing, requires_action, requires_capture, ...


def _plan_code(session: Session, app_id: int) -> Optional[str]:
    return session.scalar(select(KernelPlan.code).join(AppSubscription, AppSubscription.plan_id == KernelPlan.id)
                          .where(AppSubscription.app_id == app_id, AppSubscription.is_live).limit(1))


def record_attempt(session: Session, app_id: int, intent: PaymentIntent, *, observed_at: int,
                   correlation_id: Optional[str] = None) -> Optional[PaymentOutcome]:
    """Record the outcome ``intent`` shows, once per charge; None when it shows none or it was recorded."""
    outcome = _outcome(intent)
    if outcome is None:
        return None
    reference = intent.latest_charge or f"{intent.id}:{outcome}:{observed_at}"
    if session.scalar(select(PaymentOutcome.id).where(PaymentOutcome.reference == reference)) is not None:
        return None
    row = PaymentOutcome(reference=reference, app_id=app_id, stripe_payment_intent_id=intent.id, outcome=outcome,
                         reason=None if outcome == SUCCEEDED else (intent.last_error_code or "declined"),
                         plan_code=_plan_code(session, app_id),
                         amount=intent.amount_received if outcome == SUCCEEDED else intent.amount,
                         currency=intent.currency, occurred_at=ts(observed_at))
    if not insert_once(session, row):
        return None  # the same charge reported by another delivery at the same moment
    log.info("payment attempt %s: %s (%s)", outcome, intent.id, row.reason or "ok",
             extra={"event": "payment.attempt", "outcome": outcome, "reason": row.reason, "app_id": app_id,
                    "payment_intent": intent.id, "charge": intent.latest_charge, "amount": row.amount,
                    "currency": row.currency, "plan": row.plan_code,
                    "origin_correlation_id": correlation_id})
    return row

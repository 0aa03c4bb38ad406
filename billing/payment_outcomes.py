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

from sqlalchemy import bindparam, exists, insert, select
from sqlalchemy.orm import Session

from billing.db import insert_unless_present
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


_table = PaymentOutcome.__table__
# Built once: one cached statement records an attempt, reading the app's plan when it happened and leaving a
# charge already recorded (by another event about it, or another delivery at the same moment) as it is.
_RECORD = insert(_table).from_select(
    ["reference", "app_id", "stripe_payment_intent_id", "outcome", "reason", "plan_code", "amount", "currency",
     "occurred_at"],
    select(bindparam("reference", type_=_table.c.reference.type), bindparam("app_id", type_=_table.c.app_id.type),
           bindparam("intent", type_=_table.c.stripe_payment_intent_id.type),
           bindparam("outcome", type_=_table.c.outcome.type), bindparam("reason", type_=_table.c.reason.type),
           select(KernelPlan.code).join(AppSubscription, AppSubscription.plan_id == KernelPlan.id)
           .where(AppSubscription.app_id == bindparam("app_id"), AppSubscription.is_live).limit(1).scalar_subquery(),
           bindparam("amount", type_=_table.c.amount.type), bindparam("currency", type_=_table.c.currency.type),
           bindparam("occurred_at", type_=_table.c.occurred_at.type))
    .where(~exists().where(_table.c.reference == bindparam("reference")))
).returning(_table.c.plan_code)


def record_attempt(session: Session, app_id: int, intent: PaymentIntent, *, observed_at: int,
                   correlation_id: Optional[str] = None) -> bool:
    """Record the outcome ``intent`` shows, once per charge; False when it shows none or it was recorded."""
    outcome = _outcome(intent)
    if outcome is None:
        return False
    reference = intent.latest_charge or f"{intent.id}:{outcome}:{observed_at}"
    reason = None if outcome == SUCCEEDED else (intent.last_error_code or "declined")
    amount = intent.amount_received if outcome == SUCCEEDED else intent.amount
    recorded = insert_unless_present(session, _RECORD, {
        "reference": reference, "app_id": app_id, "intent": intent.id, "outcome": outcome, "reason": reason,
        "amount": amount, "currency": intent.currency, "occurred_at": ts(observed_at)})
    if recorded is None:
        return False  # this charge was recorded already
    log.info("payment attempt %s: %s (%s)", outcome, intent.id, reason or "ok",
             extra={"event": "payment.attempt", "outcome": outcome, "reason": reason, "app_id": app_id,
                    "payment_intent": intent.id, "charge": intent.latest_charge, "amount": amount,
                    "currency": intent.currency, "plan": recorded.plan_code,
                    "origin_correlation_id": correlation_id})
    return True

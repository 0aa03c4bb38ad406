"""Charges an owner asks for, recorded before Stripe is called and settled once their outcome is known.

An upgrade (the proration charged now) and paying an open invoice during dunning
each charge a card inside one Stripe call. If the connection dies after the
request left, Stripe may have charged: the owner must hear "being confirmed", not
"nothing was charged". So:

1. ``begin`` records a ``ChargeAttempt`` with the call's idempotency key and the
   user who asked; the caller commits it *before* the call.
2. Stripe's answer settles it (``settle``); a lost answer marks it ``unknown``
   (``mark_unknown``), and the audit trail says so.
3. An unknown attempt is settled by ``confirm``, which sends the very same call
   with the same key (Stripe replays its stored answer, or makes the call now if
   the first never arrived: never a second charge), or by the ``invoice.paid``
   webhook (``settle_from_invoice``).

Statuses only move forward (pending -> unknown -> succeeded | failed); every
move writes an audit row naming the user who asked.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Optional

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from billing import audit, clock, control
from billing.audit import Origin
from billing.db import insert_once
from billing.errors import BillingError, CardDeclined, GatewayError, GatewayUnavailable, IdempotencyConflict
from billing.gateway import Invoice, StripeGateway
from billing.models import ChargeAttempt, ChargeStatus
from billing.sync import sync_invoice, sync_subscription
from billing.webhooks.prefetch import asking

log = logging.getLogger(__name__)

UPGRADE = "upgrade"
INVOICE_PAYMENT = "invoice_payment"


class ChargeInDoubt(BillingError):
    """Another charge of this app is still being confirmed: a new one waits until it is known."""

    def __init__(self, attempt: ChargeAttempt):
        super().__init__(f"charge {attempt.idempotency_key} of app {attempt.app_id} is {attempt.status}")
        self.attempt = attempt


def open_attempt(session: Session, app_id: int) -> Optional[ChargeAttempt]:
    return session.scalar(select(ChargeAttempt).where(ChargeAttempt.app_id == app_id,
                                                      ChargeAttempt.status.in_([ChargeStatus.PENDING,
                                                                                ChargeStatus.UNKNOWN])))


def begin(session: Session, *, app_id: int, kind: str, key: str, target: str, origin: Origin,
          details: dict) -> tuple[ChargeAttempt, bool]:
    """The attempt for ``key``: ``(row, True)`` when recorded now, ``(row, False)`` when it existed (the same
    form sent twice). Raises ``ChargeInDoubt`` while another charge of the app is open. The caller commits."""
    control.refuse_if_paused(session, app_id)
    existing = session.scalar(select(ChargeAttempt).where(ChargeAttempt.idempotency_key == key))
    if existing is not None:
        return existing, False
    other = open_attempt(session, app_id)
    if other is not None:
        raise ChargeInDoubt(other)
    row = ChargeAttempt(app_id=app_id, kind=kind, idempotency_key=key, target=target, status=ChargeStatus.PENDING,
                        requested_by_id=origin.actor_user_id, correlation_id=origin.correlation_id, details=details)
    if not insert_once(session, row):  # a concurrent twin: the same key, or another open charge of the app
        existing = session.scalar(select(ChargeAttempt).where(ChargeAttempt.idempotency_key == key))
        if existing is not None:
            return existing, False
        raise ChargeInDoubt(open_attempt(session, app_id)) from None
    _audit(session, row, "charge.requested", None, origin)
    return row, True


def wait_while_in_flight(session: Session, row: ChargeAttempt, *, seconds: float) -> ChargeAttempt:
    """Wait (up to ``seconds``) while ``row`` is pending in another request, which will settle it; returns it
    reloaded. A second confirmation arriving mid-charge waits for the first, as it waited on the row lock."""
    deadline = time.monotonic() + seconds
    attempt_id = row.id
    while True:
        session.rollback()  # a fresh snapshot: the other request commits in its own transaction
        row = session.get(ChargeAttempt, attempt_id, populate_existing=True)
        if row.status != ChargeStatus.PENDING or time.monotonic() >= deadline:
            return row
        time.sleep(0.1)


def mark_unknown(session: Session, row: ChargeAttempt, error: GatewayError, origin: Origin) -> None:
    if row.status != ChargeStatus.PENDING:
        return
    row.status, row.error = ChargeStatus.UNKNOWN, (error.message or type(error).__name__)[:255]
    _audit(session, row, "charge.outcome_unknown", ChargeStatus.PENDING, origin)
    log.warning("charge %s of app %s: outcome unknown (%s)", row.idempotency_key, row.app_id, row.error)


def settle(session: Session, row: ChargeAttempt, status: ChargeStatus, origin: Origin, *,
           invoice: Optional[Invoice] = None, amount: Optional[int] = None, currency: Optional[str] = None,
           error: Optional[str] = None) -> bool:
    """Record the outcome (the amount from ``invoice`` or given); False when it was already known."""
    if not row.status.is_open or status.is_open:
        return False
    before = row.status
    row.status, row.settled_at = status, clock.now()
    if invoice is not None:
        row.stripe_invoice_id = invoice.id
        amount, currency = invoice.amount_paid, invoice.currency
    if amount is not None:
        row.amount, row.currency = amount, currency
    if error:
        row.error = error[:255]
    _audit(session, row, f"charge.{status.value}", before, origin)
    return True


def settle_from_invoice(session: Session, invoice: Invoice, origin: Origin) -> None:
    """``invoice.paid``: the open charge this invoice answers (paying it, or the upgrade it bills) succeeded."""
    if invoice.id is None:
        return
    conditions = [(ChargeAttempt.kind == INVOICE_PAYMENT) & (ChargeAttempt.target == invoice.id)]
    if invoice.billing_reason == "subscription_update" and invoice.subscription:
        conditions.append((ChargeAttempt.kind == UPGRADE) & (ChargeAttempt.target == invoice.subscription))
    rows = session.scalars(select(ChargeAttempt).where(or_(*conditions), ChargeAttempt.status.in_(
        [ChargeStatus.PENDING, ChargeStatus.UNKNOWN]))).all()
    for row in rows:
        settle(session, row, ChargeStatus.SUCCEEDED, origin, invoice=invoice)


def confirm(session: Session, gateway: StripeGateway, row: ChargeAttempt, origin: Origin) -> ChargeStatus:
    """Settle an open attempt by sending the same call with the same idempotency key.

    Stripe answers a key it has seen with the stored answer (and charges nothing
    again); a call that never reached it is made now, as the owner asked. Commits
    what the session holds before calling Stripe (no transaction stays open across
    the call), then records the outcome; the caller commits that. Returns the status,
    still ``unknown`` while Stripe is away.
    """
    if not row.status.is_open or control.billing_paused(session, row.app_id):  # paused: settled after the resume
        return row.status
    row_id, kind, target, details = row.id, row.kind, row.target, dict(row.details or {})
    session.commit()
    invoice: Optional[Invoice] = None
    full = None
    outcome: tuple[ChargeStatus, Optional[str]] | None = None
    unknown: Optional[GatewayError] = None
    asked_ns = asking(gateway)
    try:
        if kind == UPGRADE:
            remote = gateway.retrieve_subscription(target)
            if remote.price_id not in (details["from_price"], details["to_price"]):
                outcome = (ChargeStatus.FAILED, "the subscription changed meanwhile")
            else:
                # The same parameters as the first call (Stripe compares them): the price it changed from; the
                # item keeps its id through a price change.
                before = dataclasses.replace(remote, price_id=details["from_price"])
                full, invoice = gateway.change_price_now_in_full(before, details["to_price"],
                                                                 proration_date=details["proration_date"],
                                                                 attempt=details["attempt"])
        else:
            invoice = gateway.pay_invoice(target, attempt=details["attempt"],
                                          payment_method_id=details.get("payment_method"))
        if outcome is None:
            outcome = (ChargeStatus.SUCCEEDED, None)
    except CardDeclined as declined:
        outcome = (ChargeStatus.FAILED, f"declined: {declined.decline_code or declined.code}")
    except GatewayUnavailable as error:
        unknown = error
        log.info("charge %s still unconfirmed: %s", details.get("attempt"), error.message)
    except IdempotencyConflict as error:  # the first request with this key is still being processed by Stripe
        log.info("charge %s still in flight at Stripe: %s", target, error.message)
    except GatewayError as error:
        outcome = (ChargeStatus.FAILED, error.message)
    row = session.get(ChargeAttempt, row_id, populate_existing=True)
    if unknown is not None:
        mark_unknown(session, row, unknown, origin)
    elif outcome is not None:
        observed_at = int(clock.now().timestamp())
        if full is not None:
            sync_subscription(session, full[0], observed_at=observed_at, origin=origin, schedule=full[1], card=full[2],
                              asked_ns=asked_ns)
        if invoice is not None and invoice.id is not None:
            sync_invoice(session, invoice, observed_at=observed_at, origin=origin, asked_ns=asked_ns)
        status, error_text = outcome
        settle(session, row, status, origin, invoice=invoice if status == ChargeStatus.SUCCEEDED else None,
               error=error_text)
    return row.status


def _audit(session: Session, row: ChargeAttempt, action: str, before: Optional[ChargeStatus], origin: Origin) -> None:
    # The actor is who asked for the charge, whoever (a webhook, a replay) learns its outcome.
    audit.record(session, action=action, object_type="charge_attempt", object_id=row.idempotency_key,
                 app_id=row.app_id, before=None if before is None else {"status": before.value},
                 after={"status": row.status.value, "kind": row.kind, "target": row.target,
                        "amount": row.amount, "currency": row.currency, "invoice": row.stripe_invoice_id,
                        "settled_by": origin.actor},
                 # The charge is the requester's, whoever settles it: the audit names them.
                 origin=Origin(actor="user" if row.requested_by_id else origin.actor,
                               actor_user_id=row.requested_by_id,
                               correlation_id=origin.correlation_id or row.correlation_id))

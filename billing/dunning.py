"""Dunning: what happens after a renewal payment fails.

The kernel owns retries (Stripe's Smart Retries are off for these subscriptions):

* day 0, the failure: subscription ``past_due``, attempt #0 recorded, alert raised,
  owner notified. The app keeps working: a grace period of ``GRACE_DAYS``.
* retries #1, #2 and #3 on days 3, 5 and 7 (``RETRY_DAYS``), each announced to the
  owner beforehand, each failure recorded and alerted (``jobs/dunning.py`` runs them).
* after the third failure: subscription canceled, app paused.

``open_dunning`` is day 0; it is called by the ``invoice.payment_failed`` webhook
handler and is idempotent (one attempt #0 per invoice, one alert, one notice).
"""
from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Optional

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.orm import Session

from billing import audit, control
from billing.audit import Origin
from billing.clock import business_date, business_day_start
from billing.db import insert_once, insert_or_load
from billing.errors import CardDeclined, InvalidRequest, NotFound
from billing.gateway import Invoice, StripeGateway, SubscriptionState
from billing.models import (
    Alert,
    AlertSeverity,
    App,
    AppStatus,
    AttemptStatus,
    DunningOutcome,
    InvoiceStatus,
    KernelInvoice,
    KernelPaymentAttempt,
)
from billing.notifications import NoticeKind, iso, notify_owners
from billing.states import SubscriptionStatus
from billing.sync import refetch_invoice, sync_invoice, sync_subscription, sync_subscription_from_gateway
from billing.webhooks.prefetch import asked_since, asking

log = logging.getLogger(__name__)

RETRY_DAYS = (3, 5, 7)
GRACE_DAYS = 7
MAX_RETRIES = len(RETRY_DAYS)
# Each retry is announced the day before, and never charged less than this after its notice,
# so an owner always has time to change the card.
NOTICE_DAYS_BEFORE = 1
NOTICE_LEAD = timedelta(hours=12)
# A retry claimed by a run that died before recording the answer is driven again (same
# idempotency key, so Stripe replays a charge that did happen) once it is this old.
STUCK_CLAIM_AFTER = timedelta(minutes=10)


def retry_schedule(failed_at: datetime) -> list[datetime]:
    """When retries #1..#3 fall due after a failure at ``failed_at`` ("day 3" is a São Paulo calendar day, see
    ``retry_dates``, not 72 hours)."""
    return [failed_at + timedelta(days=day) for day in RETRY_DAYS]


def open_dunning(session: Session, invoice: KernelInvoice, *, failed_at: datetime, origin: Origin,
                 failure_code: Optional[str] = None, failure_message: Optional[str] = None,
                 smtp_configured: bool = False) -> KernelPaymentAttempt:
    """Record the failed renewal (attempt #0), raise an alert and tell the owner. Safe to call again."""
    same = select(KernelPaymentAttempt).where(KernelPaymentAttempt.invoice_id == invoice.id,
                                              KernelPaymentAttempt.attempt_number == 0)
    existing = session.scalar(same)
    if existing:
        return existing
    attempt, ours = insert_or_load(session, KernelPaymentAttempt(
        app_id=invoice.app_id, subscription_id=invoice.subscription_id, invoice_id=invoice.id, attempt_number=0,
        status=AttemptStatus.FAILED, attempted_at=failed_at, failure_code=failure_code,
        failure_message=failure_message), same)
    if not ours:  # the same failure delivered twice at once: the other delivery recorded it
        return attempt

    audit.raise_alert(
        session, kind="payment_failed", severity=AlertSeverity.CRITICAL, app_id=invoice.app_id,
        message=f"Renewal payment failed for invoice {invoice.number or invoice.stripe_invoice_id}"
                f" ({failure_code or 'declined'}); dunning started.",
        details={"invoice": invoice.stripe_invoice_id, "amount_due": invoice.amount_due,
                 "currency": invoice.currency, "failure_code": failure_code},
        dedupe_key=f"payment_failed:{invoice.stripe_invoice_id}:0",
    )
    first_retry = retry_schedule(failed_at)[0]
    notify_owners(
        session, invoice.app, kind=NoticeKind.DUNNING_FAILED,
        data={**_invoice_data(invoice), "grace_days": GRACE_DAYS, "next_retry_at": iso(first_retry)},
        dedupe_key=f"dunning:{invoice.stripe_invoice_id}:failed",
        smtp_configured=smtp_configured,
    )
    audit.record(session, action="dunning.opened", object_type="kernel_invoice", object_id=invoice.stripe_invoice_id,
                 app_id=invoice.app_id, before=None,
                 after={"attempt": 0, "failure_code": failure_code, "next_retry": first_retry.isoformat()},
                 origin=origin)
    return attempt


# ---------------------------------------------------------------- days 1 to 7: notices, retries, the end


class Step(enum.StrEnum):
    """What one pass of the dunning job did to one invoice."""

    WAITING = "waiting"  # nothing due today
    NOTIFIED = "notified"  # the owner was told of tomorrow's retry
    RETRY_FAILED = "retry_failed"
    RECOVERED = "recovered"  # paid: by a retry, by the owner, or in Stripe
    EXHAUSTED = "exhausted"  # third retry failed: subscription canceled, app paused
    VOIDED = "voided"  # the invoice was voided in Stripe: nothing left to collect
    HELD = "held"  # billing is paused for this app: nothing done, the next pass after the resume catches up


@dataclass(frozen=True)
class DunningContext:
    """What every dunning step needs: Stripe, the time, who acts, and how notices travel."""

    gateway: StripeGateway
    now: datetime
    origin: Origin
    smtp_configured: bool = False
    portal_base_url: str = ""  # for links in notices; empty: notices name the page instead
    # Retry slots this pass is charging, with when it started (wall-clock ns): a slot claimed and committed
    # before the step stopped to ask Stripe is this pass's own, not a crashed run's; and Stripe's invoice
    # after the charge must be asked after that moment, not replayed from the step's first read.
    charging: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DunningSummary:
    """An invoice in dunning as the owner and the superadmin see it."""

    invoice: KernelInvoice
    failed_at: datetime
    retries: list[KernelPaymentAttempt]  # made or announced, in order
    next_retry_on: Optional[date]
    grace_ends_on: date


def retry_dates(failed_at: datetime) -> list[date]:
    """The calendar days (São Paulo) on which retries #1..#3 fall."""
    return [business_date(moment) for moment in retry_schedule(failed_at)]


def _attempts(session: Session, invoice: KernelInvoice) -> dict[int, KernelPaymentAttempt]:
    rows = session.scalars(select(KernelPaymentAttempt).where(KernelPaymentAttempt.invoice_id == invoice.id))
    return {row.attempt_number: row for row in rows}


def open_dunning_invoice_ids(session: Session) -> list[int]:
    """Invoices whose dunning is under way: a failed renewal (attempt #0) and no end recorded yet."""
    query = (select(KernelInvoice.id)
             .join(KernelPaymentAttempt, (KernelPaymentAttempt.invoice_id == KernelInvoice.id)
                   & (KernelPaymentAttempt.attempt_number == 0))
             .where(KernelInvoice.dunning_closed_at.is_(None))
             .order_by(KernelInvoice.id))
    return list(session.scalars(query))


def paused_app_ids(session: Session) -> list[int]:
    return list(session.scalars(select(App.id).where(App.status == AppStatus.PAUSED).order_by(App.id)))


def advance_dunning(session: Session, invoice: KernelInvoice, ctx: DunningContext) -> Step:
    """Do what is due today for one invoice in dunning; a second call on the same day does nothing more.

    Stripe's invoice is read first, so an invoice paid or voided meanwhile ends
    dunning without a retry. A retry slot is claimed in the database and committed
    *before* Stripe is called: only the run holding the claim charges.
    """
    if control.billing_paused(session, invoice.app_id):
        return Step.HELD
    attempts = _attempts(session, invoice)
    first = attempts.get(0)
    if first is None or invoice.dunning_closed_at is not None:
        return Step.WAITING
    remote = _refresh_invoice(session, invoice, ctx)
    if remote.status == InvoiceStatus.PAID:
        return settle_invoice(session, invoice, ctx, paid_by="stripe")
    if remote.status == InvoiceStatus.VOID:
        return _close_voided(session, invoice, attempts, ctx)

    stuck = [row for number, row in sorted(attempts.items())
             if number > 0 and row.status == AttemptStatus.SCHEDULED and row.attempted_at is not None]
    if stuck:
        # Being charged by this pass: the step runs again with Stripe's answer (billing.passes, ``read_first``).
        ours = stuck[0].id in ctx.charging
        if not ours and ctx.now - stuck[0].attempted_at < STUCK_CLAIM_AFTER:
            return Step.WAITING  # possibly still being charged by another process
        return _charge(session, invoice, stuck[0], ctx)

    failed = sum(1 for number in range(1, MAX_RETRIES + 1)
                 if number in attempts and attempts[number].status == AttemptStatus.FAILED)
    number = failed + 1
    if number > MAX_RETRIES:
        return _give_up(session, invoice, ctx)

    due_on = retry_dates(first.attempted_at)[number - 1]
    today = business_date(ctx.now)
    slot = attempts.get(number)
    if slot is None:
        if today < due_on - timedelta(days=NOTICE_DAYS_BEFORE):
            return Step.WAITING
        return Step.NOTIFIED if _announce_retry(session, invoice, number, due_on, ctx) else Step.WAITING
    if slot.status != AttemptStatus.SCHEDULED or today < due_on:
        return Step.WAITING
    if slot.notified_at is not None and ctx.now - slot.notified_at < NOTICE_LEAD:
        return Step.WAITING  # announced late (the job missed the day before): give the owner time
    if not _claim(session, slot, ctx.now):
        return Step.WAITING
    session.commit()  # the claim must be durable before money moves
    return _charge(session, invoice, slot, ctx)


def _refresh_invoice(session: Session, invoice: KernelInvoice, ctx: DunningContext,
                     since: Optional[int] = None) -> Invoice:
    """Stripe's invoice (asked at ``since`` wall-clock ns or later) written to our row."""
    asked_ns = asking(ctx.gateway)
    remote = asked_since(ctx.gateway, since).retrieve_invoice(invoice.stripe_invoice_id)
    sync_invoice(session, remote, observed_at=_unix(ctx.now), origin=ctx.origin, asked_ns=asked_ns,
                 refetch=refetch_invoice(ctx.gateway, invoice.stripe_invoice_id))
    return remote


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _label(invoice: KernelInvoice) -> str:
    return invoice.number or invoice.stripe_invoice_id


def _invoice_data(invoice: KernelInvoice, ctx: Optional["DunningContext"] = None) -> dict:
    """What a dunning notice says about the invoice; the pay link when the portal's address is known."""
    base = ctx.portal_base_url if ctx else ""
    return {"invoice": _label(invoice), "amount": invoice.amount_remaining or invoice.amount_due,
            "currency": invoice.currency, "pay_url": f"{base}/apps/{invoice.app_id}/pay" if base else None}


def _announce_retry(session: Session, invoice: KernelInvoice, number: int, due_on: date,
                    ctx: DunningContext) -> bool:
    """Book retry ``number`` (status scheduled) and tell the owner; False if another run booked it."""
    slot = KernelPaymentAttempt(app_id=invoice.app_id, subscription_id=invoice.subscription_id,
                                invoice_id=invoice.id, attempt_number=number, status=AttemptStatus.SCHEDULED,
                                scheduled_for=business_day_start(due_on), notified_at=ctx.now)
    if not insert_once(session, slot):
        return False
    notify_owners(
        session, invoice.app, kind=NoticeKind.DUNNING_RETRY_NOTICE,
        data={**_invoice_data(invoice, ctx), "retry_on": due_on.isoformat(), "attempt": number,
              "max_attempts": MAX_RETRIES},
        dedupe_key=f"dunning:{invoice.stripe_invoice_id}:retry:{number}:notice",
        smtp_configured=ctx.smtp_configured,
    )
    return True


def _claim(session: Session, slot: KernelPaymentAttempt, now: datetime) -> bool:
    """Take the retry slot: only the one UPDATE that finds it unclaimed gets a row back."""
    result = session.execute(
        update(KernelPaymentAttempt)
        .where(KernelPaymentAttempt.id == slot.id, KernelPaymentAttempt.attempted_at.is_(None),
               KernelPaymentAttempt.status == AttemptStatus.SCHEDULED)
        .values(attempted_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    slot.attempted_at = now
    return True


def _charge(session: Session, invoice: KernelInvoice, slot: KernelPaymentAttempt, ctx: DunningContext) -> Step:
    number = slot.attempt_number
    ctx.charging.setdefault(slot.id, time.time_ns())
    try:
        paid = ctx.gateway.pay_invoice(invoice.stripe_invoice_id, attempt=f"dunning-{number}")
    except CardDeclined as declined:
        return _retry_failed(session, invoice, slot, ctx, declined.decline_code or declined.code or "card_declined",
                             declined.message)
    except NotFound:
        raise
    except InvalidRequest:
        # Typically "invoice is already paid" or voided meanwhile: Stripe's state decides.
        remote = _refresh_invoice(session, invoice, ctx, since=ctx.charging[slot.id])
        if remote.status not in (InvoiceStatus.PAID, InvoiceStatus.VOID):
            raise
        slot.status = AttemptStatus.CANCELED
        if remote.status == InvoiceStatus.VOID:
            return _close_voided(session, invoice, _attempts(session, invoice), ctx)
        return settle_invoice(session, invoice, ctx, paid_by="stripe")
    slot.status = AttemptStatus.SUCCEEDED
    sync_invoice(session, paid, observed_at=_unix(ctx.now), origin=ctx.origin, asked_ns=ctx.charging[slot.id])
    audit.record(session, action="dunning.retry_succeeded", object_type="kernel_invoice",
                 object_id=invoice.stripe_invoice_id, app_id=invoice.app_id, before={"attempt": number,
                 "status": "scheduled"}, after={"attempt": number, "status": "succeeded"}, origin=ctx.origin)
    return settle_invoice(session, invoice, ctx, paid_by=f"retry-{number}")


def _retry_failed(session: Session, invoice: KernelInvoice, slot: KernelPaymentAttempt, ctx: DunningContext,
                  code: str, message: str) -> Step:
    number = slot.attempt_number
    slot.status = AttemptStatus.FAILED
    slot.failure_code = code
    slot.failure_message = message
    _refresh_invoice(session, invoice, ctx, since=ctx.charging[slot.id])
    audit.raise_alert(
        session, kind="payment_failed", severity=AlertSeverity.CRITICAL, app_id=invoice.app_id,
        message=f"Dunning retry #{number} of {MAX_RETRIES} failed for invoice {_label(invoice)} ({code}).",
        details={"invoice": invoice.stripe_invoice_id, "attempt": number, "amount_due": invoice.amount_due,
                 "currency": invoice.currency, "failure_code": code},
        dedupe_key=f"payment_failed:{invoice.stripe_invoice_id}:{number}",
    )
    audit.record(session, action="dunning.retry_failed", object_type="kernel_invoice",
                 object_id=invoice.stripe_invoice_id, app_id=invoice.app_id,
                 before={"attempt": number, "status": "scheduled"},
                 after={"attempt": number, "status": "failed", "failure_code": code}, origin=ctx.origin)
    log.info("dunning retry #%s of %s failed (%s)", number, invoice.stripe_invoice_id, code)
    if number >= MAX_RETRIES:
        return _give_up(session, invoice, ctx)
    return Step.RETRY_FAILED


def _give_up(session: Session, invoice: KernelInvoice, ctx: DunningContext) -> Step:
    """After the last failed retry: cancel the subscription in Stripe, pause the app, tell everyone."""
    subscription = invoice.subscription
    if subscription is not None and subscription.status != SubscriptionStatus.CANCELED:
        try:
            ctx.gateway.cancel_now(subscription.stripe_subscription_id)
        except NotFound:
            raise
        except InvalidRequest:
            pass  # already canceled in Stripe: the sync below reads what Stripe holds
        sync_subscription_from_gateway(session, ctx.gateway, subscription.stripe_subscription_id, origin=ctx.origin)
    app = invoice.app
    # Kept in English for the audit trail and the admin; pages say it in the reader's language from the
    # exhausted invoice (portal/notices: pause_reason).
    pause_app(session, app, ctx, reason=(
        f"Renewal payment of invoice {_label(invoice)} failed {MAX_RETRIES + 1} times; subscription canceled."),
        invoice=invoice)
    audit.raise_alert(
        session, kind="dunning_exhausted", severity=AlertSeverity.CRITICAL, app_id=invoice.app_id,
        message=f"All {MAX_RETRIES} retries of invoice {_label(invoice)} failed: subscription canceled, app paused.",
        details={"invoice": invoice.stripe_invoice_id, "amount_due": invoice.amount_due,
                 "currency": invoice.currency},
        dedupe_key=f"dunning_exhausted:{invoice.stripe_invoice_id}",
    )
    notify_owners(
        session, app, kind=NoticeKind.DUNNING_CANCELED,
        data={**_invoice_data(invoice, ctx), "retries": MAX_RETRIES, "app": app.name},
        dedupe_key=f"dunning:{invoice.stripe_invoice_id}:canceled",
        smtp_configured=ctx.smtp_configured,
    )
    _close(session, invoice, ctx, outcome=DunningOutcome.EXHAUSTED)
    return Step.EXHAUSTED


def _close(session: Session, invoice: KernelInvoice, ctx: DunningContext, *, outcome: DunningOutcome,
           paid_by: Optional[str] = None) -> None:
    before = {"outcome": invoice.dunning_outcome}
    invoice.dunning_closed_at = invoice.dunning_closed_at or ctx.now
    invoice.dunning_outcome = outcome
    after = {"outcome": outcome, **({"paid_by": paid_by} if paid_by else {})}
    audit.record(session, action="dunning.closed", object_type="kernel_invoice", object_id=invoice.stripe_invoice_id,
                 app_id=invoice.app_id, before=before, after=after, origin=ctx.origin)


def _cancel_open_slots(attempts: dict[int, KernelPaymentAttempt]) -> None:
    for row in attempts.values():
        if row.status == AttemptStatus.SCHEDULED:
            row.status = AttemptStatus.CANCELED


def _resolve_alerts(session: Session, invoice: KernelInvoice, now: datetime) -> None:
    """A recovered payment closes the alerts its failures raised."""
    key = invoice.stripe_invoice_id
    for alert in session.scalars(select(Alert).where(Alert.app_id == invoice.app_id, Alert.resolved_at.is_(None),
                                                     Alert.dedupe_key.like(f"payment_failed:{key}:%"))):
        alert.resolved_at = now


def _close_voided(session: Session, invoice: KernelInvoice, attempts: dict[int, KernelPaymentAttempt],
                  ctx: DunningContext) -> Step:
    _cancel_open_slots(attempts)
    _resolve_alerts(session, invoice, ctx.now)
    _close(session, invoice, ctx, outcome=DunningOutcome.VOID)
    resume_if_settled(session, invoice.app, ctx)
    return Step.VOIDED


def settle_invoice(session: Session, invoice: KernelInvoice, ctx: DunningContext, *, paid_by: str,
                   subscription_state: Optional[SubscriptionState] = None, state_asked_ns: Optional[int] = None) -> Step:
    """End dunning for an invoice Stripe reports paid; reactivate the subscription and the app. Idempotent.

    Called by the dunning job (a retry succeeded, or Stripe says it was paid) and by
    the portal when the owner pays; ``invoice`` must already hold Stripe's paid state.
    ``subscription_state``: the subscription read from Stripe beforehand (``retrieve_subscription_in_full``),
    by a caller that asks Stripe with no transaction open (at ``state_asked_ns``, ``billing.sync``); without it,
    Stripe is asked here.
    """
    if invoice.dunning_outcome == DunningOutcome.PAID:
        return Step.RECOVERED
    _cancel_open_slots(_attempts(session, invoice))
    subscription = invoice.subscription
    if subscription is not None and subscription.status != SubscriptionStatus.CANCELED:
        if subscription_state is not None and subscription_state[0].id == subscription.stripe_subscription_id:
            remote, schedule, card = subscription_state
            sync_subscription(session, remote, observed_at=int(ctx.now.timestamp()), origin=ctx.origin,
                              schedule=schedule, card=card, asked_ns=state_asked_ns)
        else:
            sync_subscription_from_gateway(session, ctx.gateway, subscription.stripe_subscription_id,
                                           origin=ctx.origin)
    _resolve_alerts(session, invoice, ctx.now)
    _close(session, invoice, ctx, outcome=DunningOutcome.PAID, paid_by=paid_by)
    notify_owners(
        session, invoice.app, kind=NoticeKind.DUNNING_RECOVERED, data=_invoice_data(invoice),
        dedupe_key=f"dunning:{invoice.stripe_invoice_id}:paid",
        smtp_configured=ctx.smtp_configured,
    )
    resume_if_settled(session, invoice.app, ctx)
    return Step.RECOVERED


# ---------------------------------------------------------------- pausing and resuming an app


def settle_if_in_dunning(session: Session, invoice: KernelInvoice, ctx: DunningContext, *, paid_by: str,
                         subscription_state: Optional[SubscriptionState] = None,
                         state_asked_ns: Optional[int] = None) -> bool:
    """``settle_invoice`` for an invoice that is (or was, exhausted) in dunning; False for any other invoice.

    The ``invoice.paid`` webhook calls it, so a dunning paid in Stripe ends at once
    rather than at the next daily run.
    """
    if invoice.status != InvoiceStatus.PAID or invoice.dunning_outcome not in (None, DunningOutcome.EXHAUSTED):
        return False
    if not _attempts(session, invoice).get(0):
        return False
    settle_invoice(session, invoice, ctx, paid_by=paid_by, subscription_state=subscription_state,
                   state_asked_ns=state_asked_ns)
    return True


def pause_app(session: Session, app: App, ctx: DunningContext, *, reason: str,
              invoice: Optional[KernelInvoice] = None) -> bool:
    if app.status == AppStatus.PAUSED:
        return False
    app.status, app.paused_reason, app.paused_at = AppStatus.PAUSED, reason, ctx.now
    audit.record(session, action="app.paused", object_type="app", object_id=app.id, app_id=app.id,
                 before={"status": "active"},
                 after={"status": "paused", "reason": reason,
                        "invoice": invoice.stripe_invoice_id if invoice else None},
                 origin=ctx.origin)
    return True


def resume_if_settled(session: Session, app: App, ctx: DunningContext) -> bool:
    """Reactivate a paused app once nothing is owed or it has a live subscription again.

    The rule: an app paused by dunning runs again when every invoice whose retries
    were exhausted is paid (or voided), or when it subscribes again (a new
    subscription that grants access), whichever comes first.
    """
    if app.status != AppStatus.PAUSED:
        return False
    owed = session.scalar(select(KernelInvoice.id).where(KernelInvoice.app_id == app.id,
                                                         KernelInvoice.dunning_outcome == DunningOutcome.EXHAUSTED).limit(1))
    live = app.current_subscription
    subscribed_again = live is not None and live.status.grants_access
    if owed is not None and not subscribed_again:
        return False
    before = {"status": "paused", "reason": app.paused_reason}
    app.status, app.paused_reason, app.paused_at = AppStatus.ACTIVE, None, None
    audit.record(session, action="app.resumed", object_type="app", object_id=app.id, app_id=app.id, before=before,
                 after={"status": "active", "because": "subscribed_again" if owed is not None else "paid"},
                 origin=ctx.origin)
    return True


def review_paused_app(session: Session, app: App, ctx: DunningContext) -> bool:
    """For the daily job: settle exhausted invoices paid (or voided) in Stripe since, then maybe resume."""
    for invoice in session.scalars(select(KernelInvoice).where(KernelInvoice.app_id == app.id,
                                                               KernelInvoice.dunning_outcome == DunningOutcome.EXHAUSTED)):
        remote = _refresh_invoice(session, invoice, ctx)
        if remote.status == InvoiceStatus.PAID:
            settle_invoice(session, invoice, ctx, paid_by="stripe")
        elif remote.status == InvoiceStatus.VOID:
            _close(session, invoice, ctx, outcome=DunningOutcome.VOID)
    return resume_if_settled(session, app, ctx)


# ---------------------------------------------------------------- what the portal shows


# Built once: every app page's banner runs it, and building it costs more than the database running it.
_FIRST_TRY_MADE = (select(KernelPaymentAttempt.id)
                   .where(KernelPaymentAttempt.invoice_id == KernelInvoice.id, KernelPaymentAttempt.attempt_number == 0)
                   .exists())
_IN_DUNNING = _FIRST_TRY_MADE & (KernelInvoice.dunning_outcome.is_(None)
                                 | (KernelInvoice.dunning_outcome == DunningOutcome.EXHAUSTED))
_OUTSTANDING = (select(KernelInvoice)
                .where(KernelInvoice.app_id == bindparam("app_id"), KernelInvoice.is_open,
                       _IN_DUNNING | (KernelInvoice.amount_remaining > 0))
                .order_by(case((_IN_DUNNING, 0), else_=1), KernelInvoice.id.desc()).limit(1))


def outstanding_invoice(session: Session, app_id: int) -> Optional[KernelInvoice]:
    """The invoice the owner should pay now: one in dunning (or exhausted) first, else any open one.

    One query (every app page's banner asks): the newest open invoice in dunning sorts first, then the newest
    other open one with something left to pay.
    """
    return session.scalar(_OUTSTANDING, {"app_id": app_id})


def dunning_summary(session: Session, invoice: KernelInvoice) -> Optional[DunningSummary]:
    attempts = _attempts(session, invoice)
    first = attempts.get(0)
    if first is None:
        return None
    retries = [attempts[number] for number in sorted(attempts) if number > 0]
    next_retry_on = None
    if invoice.dunning_closed_at is None:
        failed = sum(1 for row in retries if row.status == AttemptStatus.FAILED)
        if failed < MAX_RETRIES:
            next_retry_on = retry_dates(first.attempted_at)[failed]
    grace_ends_on = business_date(first.attempted_at + timedelta(days=GRACE_DAYS))
    return DunningSummary(invoice, first.attempted_at, retries, next_retry_on, grace_ends_on)

"""Mirroring Stripe's subscriptions and invoices into our tables, newest state first.

Every path that learns something from Stripe comes through here: the Checkout
success redirect, the webhook handlers, reconciliation's heal button. Each row
keeps a watermark, the Unix time of the Stripe state it holds:

* state observed *after* the watermark is applied;
* state observed *before* it is stale and ignored, so a late event never rolls
  a subscription back;
* state observed in the *same second* is ambiguous (Stripe's ``created`` has
  one-second resolution), so the object is re-fetched from Stripe when the caller
  can (``refetch``) and that answer applied. The answer must have been asked
  after the row last changed (``stripe_synced_ns``, wall-clock nanoseconds): the
  worker asks Stripe between two short transactions, and an owner's cancel may
  commit in between, in the same second. An answer asked before it is asked again
  (``billing.webhooks.prefetch.asked_since``), never applied. An owner's action
  cannot ask again (its transaction is open by then): it says when it asked
  (``asked_ns``), and an answer asked before the row last changed is not applied.
  The row keeps what it holds, which is never behind that answer for long: any
  later change in Stripe sends its own event, applied by the worker.

Status changes go through the state machine; an illegal one raises
``IllegalTransition`` before anything is modified. Every change writes an audit row.
"""
from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Optional, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing import audit, clock
from billing.audit import Origin
from billing.errors import BillingError
from billing.gateway.types import Card, Invoice, Subscription, SubscriptionSchedule, ts
from billing.models import App, AppSubscription, KernelInvoice
from billing.plans import plan_by_price
from billing.states import SubscriptionStatus, check_transition
from billing.webhooks.prefetch import asked_since, asking

log = logging.getLogger(__name__)
T = TypeVar("T")


class Outcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"  # older than what we hold: ignored
    NOT_OURS = "not_ours"  # no app of ours owns this customer


@dataclass(frozen=True)
class SyncResult:
    outcome: Outcome
    row: Any = None
    remote: Any = None  # the Stripe state that was applied (after a re-fetch, if there was one)

    @property
    def changed(self) -> bool:
        return self.outcome in (Outcome.CREATED, Outcome.UPDATED)


class UnknownPrice(BillingError, ValueError):
    """A Stripe price that maps to none of our plans (created by hand in the dashboard?)."""

    def __init__(self, price_id: Optional[str]):
        super().__init__(f"no plan has the Stripe price {price_id!r}")
        self.price_id = price_id


SUBSCRIPTION_FIELDS = (
    "status", "plan_id", "current_period_start", "current_period_end", "cancel_at_period_end", "canceled_at",
    "trial_end", "payment_method_id", "card_brand", "card_last4", "stripe_schedule_id", "scheduled_plan_id",
    "scheduled_change_at",
)
INVOICE_FIELDS = ("status", "amount_due", "amount_paid", "amount_remaining", "attempt_count", "paid_at", "number")
# An invoice's life only goes forward: draft -> open -> (uncollectible ->) paid | void. Stripe can still pay or
# void an uncollectible invoice, never the other way round.
INVOICE_PROGRESS = {"draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3}


def snapshot(row: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """A JSON-friendly picture of ``row`` for the audit log."""
    picture = {}
    for name in fields:
        value = getattr(row, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, enum.Enum):
            value = value.value
        picture[name] = value
    return picture


def app_for_customer(session: Session, customer_id: Optional[str]) -> Optional[App]:
    if not customer_id:
        return None
    return session.scalar(select(App).where(App.stripe_customer_id == customer_id))


def _locked(query):
    """The mirrored row, locked until commit and read afresh: two workers applying events about one object
    (or an event and a redirect) take turns, so the second sees the first's watermark (PostgreSQL; SQLite has
    one writer)."""
    return query.with_for_update().execution_options(populate_existing=True)


# Asks Stripe for the object's present state, as of the wall-clock nanoseconds given (None: any answer) or later.
Refetch = Callable[[Optional[int]], T]


def _newest(row: Any, remote: T, observed_at: int, refetch: Optional[Refetch], asked_ns: Optional[int],
            ahead: Optional[Callable[[Any, T], bool]] = None) -> Optional[T]:
    """The state to apply to ``row``: ``remote``, Stripe's answer on a same-second tie, or None when stale.
    ``ahead`` says when the object's own lifecycle settles a tie (``remote`` further along than ``row``);
    ``asked_ns``, when ``remote`` was asked of Stripe (wall-clock ns), if the caller asked it just now."""
    if row is None or observed_at > row.stripe_watermark:
        return remote
    if observed_at < row.stripe_watermark:
        log.info("ignoring stale state of %s (observed %s, holding %s)", getattr(remote, "id", "?"), observed_at,
                 row.stripe_watermark)
        return None
    if ahead is not None and ahead(row, remote):
        return remote  # same second, but no later state can be behind this one
    # Same second: only Stripe can say which came last, and only in an answer asked after our row last changed.
    if asked_ns is not None and asked_ns > (row.stripe_synced_ns or 0):
        return remote
    if refetch is not None:
        return refetch(row.stripe_synced_ns)
    if asked_ns is not None:
        log.info("keeping %s: the answer was asked before the row last changed, in the same second",
                 getattr(remote, "id", "?"))
        return None
    # Neither known: the caller vouches for the answer (a handler that has just asked Stripe for the truth
    # it catches up to, state built by hand in tests).
    return remote


def _changed(row: Any) -> None:
    """Stamp ``row`` as holding a new Stripe state now (wall-clock: the billing clock may be a frozen test clock)."""
    row.stripe_synced_ns = time.time_ns()


def invoice_ahead(row: KernelInvoice, remote: Invoice) -> bool:
    """Whether ``remote`` is further along the invoice's life than ``row`` (``open`` -> ``paid``): then it is
    the newer state, whatever the clocks say, and a same-second tie needs no question to Stripe. Renewals
    are finalized and paid in the same second: this saves a Stripe call per renewal."""
    return INVOICE_PROGRESS.get(remote.status or row.status, 0) > INVOICE_PROGRESS.get(row.status, 0)


def _invoice_values(row: KernelInvoice, remote: Invoice) -> dict[str, Any]:
    """The columns of ``row`` that hold Stripe's invoice, as ``remote`` has them."""
    period_start, period_end = service_period(remote)
    values = {"number": remote.number, "status": remote.status or row.status, "billing_reason": remote.billing_reason,
              "amount_due": remote.amount_due, "amount_paid": remote.amount_paid,
              "amount_remaining": remote.amount_remaining, "currency": remote.currency,
              "period_start": period_start, "period_end": period_end,
              "hosted_invoice_url": remote.hosted_invoice_url, "invoice_pdf": remote.invoice_pdf,
              "attempt_count": remote.attempt_count, "paid_at": remote.paid_at}
    if remote.created:
        values["created_at"] = ts(remote.created)  # Stripe's date, so lists sort as Stripe's do
    return values


def invoice_settles_tie(row: KernelInvoice, remote: Invoice) -> bool:
    """A same-second tie ``remote`` settles alone: further along the invoice's life than ``row``
    (``invoice_ahead``), or the very state ``row`` holds (applying it changes nothing: a step that reads the
    invoice twice in one transaction applies the same answer twice, and must not ask Stripe a third time)."""
    return invoice_ahead(row, remote) or all(getattr(row, name) == value
                                             for name, value in _invoice_values(row, remote).items())


def invoice_behind(row: KernelInvoice, remote: Invoice) -> bool:
    """Whether ``remote`` is an earlier state of the invoice than the one ``row`` holds.

    The watermark cannot tell this alone: state fetched from Stripe is dated with our
    clock and events with Stripe's, and the two disagree by up to a second (more with a
    skewed host). A checkout's paid invoice, dated a second early, was overwritten by the
    ``invoice.created`` event of the same checkout: paid -> draft, number and amount_paid
    lost. The invoice's own lifecycle orders its states whatever the clocks say.
    """
    ours, theirs = INVOICE_PROGRESS.get(row.status, 0), INVOICE_PROGRESS.get(remote.status or row.status, 0)
    if theirs != ours:
        return theirs < ours
    return remote.amount_paid < row.amount_paid or (row.number is not None and remote.number is None)


def sync_subscription(
    session: Session,
    remote: Subscription,
    *,
    observed_at: int,
    origin: Origin,
    refetch: Optional[Refetch[Subscription]] = None,
    asked_ns: Optional[int] = None,
    schedule: Optional[SubscriptionSchedule] = None,
    card: Optional[Card] = None,
) -> SyncResult:
    """Bring our row for ``remote`` up to date (creating it if the app is ours and it is new)."""
    row = session.scalar(_locked(select(AppSubscription).where(AppSubscription.stripe_subscription_id == remote.id)))
    remote = _newest(row, remote, observed_at, refetch, asked_ns)
    if remote is None:
        return SyncResult(Outcome.STALE, row)

    app = None if row is not None else app_for_customer(session, remote.customer)  # a known row says its app_id
    if row is None and app is None:
        return SyncResult(Outcome.NOT_OURS)
    app_id = row.app_id if row is not None else app.id
    plan = plan_by_price(session, remote.price_id) if remote.price_id else None
    if plan is None:
        raise UnknownPrice(remote.price_id)
    target_status = SubscriptionStatus(remote.status)

    if row is None:
        row = AppSubscription(app=app, stripe_subscription_id=remote.id, stripe_customer_id=remote.customer,
                              status=target_status, plan=plan)
        before = None
        session.add(row)
        outcome = Outcome.CREATED
    else:
        check_transition(row.status, target_status)  # raises before anything changes
        before = snapshot(row, SUBSCRIPTION_FIELDS)
        outcome = Outcome.UPDATED

    if before is None or before.get("status") != target_status.value:
        log.info("subscription %s: %s -> %s", remote.id, before and before.get("status"), target_status.value,
                 extra={"event": "subscription.status_changed", "subscription": remote.id, "app_id": app_id,
                        "from": before and before.get("status"), "to": target_status.value, "actor": origin.actor})
    row.status = target_status
    row.plan, row.plan_id = plan, plan.id  # the id too: the audit snapshot is taken before any flush
    row.current_period_start = remote.current_period_start
    row.current_period_end = remote.current_period_end
    row.cancel_at_period_end = remote.cancel_at_period_end
    row.canceled_at = remote.canceled_at
    row.trial_end = remote.trial_end
    if remote.default_payment_method != row.payment_method_id:
        row.payment_method_id = remote.default_payment_method
        row.card_brand = row.card_last4 = None
    if card is not None and card.payment_method_id == row.payment_method_id:
        row.card_brand, row.card_last4 = card.brand, card.last4
    _apply_schedule(session, row, remote, schedule)
    row.stripe_watermark = max(row.stripe_watermark or 0, observed_at)

    after = snapshot(row, SUBSCRIPTION_FIELDS)
    if before == after:
        return SyncResult(Outcome.UNCHANGED, row, remote)
    _changed(row)
    session.flush()
    audit.record(session, action=f"subscription.{outcome.value}", object_type="app_subscription",
                 object_id=remote.id, app_id=app_id, before=before, after=after, origin=origin)
    return SyncResult(outcome, row, remote)


def _apply_schedule(session: Session, row: AppSubscription, remote: Subscription,
                    schedule: Optional[SubscriptionSchedule]) -> None:
    """A downgrade waiting for the period end is a schedule whose next phase has another price."""
    if remote.schedule is None:
        row.stripe_schedule_id = row.scheduled_plan_id = row.scheduled_change_at = None
        return
    row.stripe_schedule_id = remote.schedule
    if schedule is None or schedule.id != remote.schedule:
        return  # keep what we know; the caller had no fresh schedule to give
    upcoming = [phase for phase in schedule.phases
                if phase.start and remote.current_period_end and phase.start >= remote.current_period_end]
    next_phase = upcoming[0] if upcoming else None
    next_plan = plan_by_price(session, next_phase.price_id) if next_phase and next_phase.price_id else None
    if next_plan is None or next_plan.id == row.plan_id:
        row.scheduled_plan_id = row.scheduled_change_at = None
    else:
        row.scheduled_plan_id, row.scheduled_change_at = next_plan.id, next_phase.start


def service_period(invoice: Invoice) -> tuple[Optional[datetime], Optional[datetime]]:
    """The period an invoice pays for.

    Stripe's ``period_start``/``period_end`` on a renewal invoice name the period that
    just ended (when its items accrued); the lines carry the service period itself,
    which is what an owner reading "period" expects.
    """
    starts = [line.period_start for line in invoice.lines if line.period_start]
    ends = [line.period_end for line in invoice.lines if line.period_end]
    if starts and ends:
        return min(starts), max(ends)
    return invoice.period_start, invoice.period_end


def sync_invoice(
    session: Session,
    remote: Invoice,
    *,
    observed_at: int,
    origin: Origin,
    refetch: Optional[Refetch[Invoice]] = None,
    asked_ns: Optional[int] = None,
) -> SyncResult:
    """Bring our row for the invoice ``remote`` up to date (creating it when its customer is one of our apps)."""
    if remote.id is None:
        raise ValueError("a preview invoice has no id and is never stored")
    row = session.scalar(_locked(select(KernelInvoice).where(KernelInvoice.stripe_invoice_id == remote.id)))
    remote = _newest(row, remote, observed_at, refetch, asked_ns, ahead=invoice_settles_tie)
    if remote is None:
        return SyncResult(Outcome.STALE, row)
    if row is not None and invoice_behind(row, remote):
        log.info("ignoring an earlier state of %s (%s, holding %s)", remote.id, remote.status, row.status)
        return SyncResult(Outcome.STALE, row)

    app = None
    if row is None:
        app = app_for_customer(session, remote.customer)
        if app is None:
            return SyncResult(Outcome.NOT_OURS)
    # An invoice's subscription never changes in Stripe: looked up until the row is linked, not on every event.
    subscription = None
    if remote.subscription and (row is None or row.subscription_id is None):
        subscription = session.scalar(
            select(AppSubscription).where(AppSubscription.stripe_subscription_id == remote.subscription))

    if row is None:
        row = KernelInvoice(app=app, stripe_invoice_id=remote.id, currency=remote.currency,
                            amount_due=remote.amount_due, amount_paid=remote.amount_paid,
                            status=remote.status or "draft")
        session.add(row)
        before = None
        outcome = Outcome.CREATED
    else:
        before = snapshot(row, INVOICE_FIELDS)
        outcome = Outcome.UPDATED
    if subscription is not None:
        row.subscription = subscription
    for name, value in _invoice_values(row, remote).items():
        setattr(row, name, value)
    row.stripe_watermark = max(row.stripe_watermark or 0, observed_at)

    after = snapshot(row, INVOICE_FIELDS)
    if before == after:
        return SyncResult(Outcome.UNCHANGED, row, remote)
    _changed(row)
    session.flush()
    audit.record(session, action=f"invoice.{outcome.value}", object_type="kernel_invoice", object_id=remote.id,
                 app_id=row.app_id, before=before, after=after, origin=origin)
    return SyncResult(outcome, row, remote)


def sync_subscription_from_gateway(session: Session, gateway, subscription_id: str, *, origin: Origin,
                                   observed_at: Optional[int] = None) -> SyncResult:
    """Fetch the subscription (and its schedule and card) from Stripe and apply it: the freshest truth."""
    asked_ns = asking(gateway)
    remote, schedule, card = gateway.retrieve_subscription_in_full(subscription_id)
    when = observed_at if observed_at is not None else int(clock.now().timestamp())
    return sync_subscription(session, remote, observed_at=when, origin=origin, schedule=schedule, card=card,
                             asked_ns=asked_ns, refetch=refetch_subscription(gateway, subscription_id))


def refetch_subscription(gateway: Any, subscription_id: str) -> Optional[Refetch[Subscription]]:
    """How a job asks Stripe again about a subscription on a same-second tie; None where it cannot (an
    owner's request: ``asked_ns`` settles it)."""
    if asking(gateway) is not None:
        return None
    return lambda since: asked_since(gateway, since).retrieve_subscription(subscription_id)


def refetch_invoice(gateway: Any, invoice_id: str) -> Optional[Refetch[Invoice]]:
    """``refetch_subscription``, for an invoice."""
    if asking(gateway) is not None:
        return None
    return lambda since: asked_since(gateway, since).retrieve_invoice(invoice_id)

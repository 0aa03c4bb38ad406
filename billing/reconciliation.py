"""Reconciliation: Stripe's subscriptions and invoices against ``app_subscriptions`` and ``kernel_invoices``.

Three layers:

* ``compare_subscription`` / ``compare_invoice`` are pure: one of our rows (or
  None) against one Stripe object (or None) gives the list of divergences, each
  with both values and whether it is safe to heal.
* ``reconcile`` walks Stripe's lists page by page (100 objects a page, through
  ``gateway.iter_pages``, which waits out a 429; subscriptions and invoices are
  fetched at the same time), loads our rows for each page in one query, records every divergence with an alert (deduplicated, so a nightly
  rerun of an unfixed divergence does not raise a new one), and counts the API
  calls it made. A clean run is a run with ``divergence_count == 0`` and its counts.
* ``heal`` re-applies Stripe's state through ``billing.sync`` (Stripe is the
  source of truth for payment state) and audits it.

Stripe objects whose customer is none of our apps are out of scope. Objects created
in the last ``FRESH_GRACE`` are not reported missing on our side: their webhook
may simply not have arrived yet.
"""
from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing import audit, clock
from billing.audit import Origin
from billing.clock import BUSINESS_TIMEZONE, business_day_start
from billing.errors import BillingError
from billing.gateway import Invoice, Page, StripeGateway, Subscription
from billing.models import (
    Alert,
    AlertSeverity,
    App,
    AppSubscription,
    AttemptStatus,
    DivergenceKind,
    KernelInvoice,
    KernelPayment,
    KernelPaymentAttempt,
    KernelPlan,
    KernelRefund,
    ReconciliationDivergence,
    ReconciliationRun,
    RunStatus,
)
from billing.states import SubscriptionStatus, can_transition
from billing.sync import refetch_invoice, sync_invoice, sync_subscription_from_gateway
from billing.webhooks.prefetch import asking

log = logging.getLogger(__name__)

PAGE_SIZE = 100
LOAD_CHUNK = 500  # ids per IN (...) query when loading our rows
PAGES_IN_FLIGHT = 6  # fetched pages waiting to be compared, at most
FRESH_GRACE = timedelta(minutes=10)
# The ERP closes its books on São Paulo days: a day runs from 00:00 to 24:00 there.
GATEWAYS = ("stripe",)
_STATUSES = frozenset(status.value for status in SubscriptionStatus)


@dataclass(frozen=True)
class LocalSubscription:
    stripe_id: str
    app_id: int
    status: str
    price_id: Optional[str]
    period_start: Optional[int]
    period_end: Optional[int]


@dataclass(frozen=True)
class LocalInvoice:
    stripe_id: str
    app_id: int
    status: str
    amount_due: int
    amount_paid: int
    amount_remaining: int
    currency: str


@dataclass(frozen=True)
class Found:
    """One divergence, before it is stored."""

    kind: DivergenceKind
    object_type: str  # "subscription" or "invoice"
    stripe_id: str
    app_id: Optional[int]
    local_value: Any
    stripe_value: Any
    healable: bool


def _unix(moment: Optional[datetime]) -> Optional[int]:
    return None if moment is None else int(moment.timestamp())


# ---------------------------------------------------------------- pure comparisons


def compare_subscription(local: Optional[LocalSubscription], remote: Optional[Subscription], *,
                         app_id: Optional[int] = None, known_prices: frozenset[str] = frozenset()) -> list[Found]:
    """What differs between our row and Stripe's subscription; either side may be missing."""
    if local is None and remote is None:
        return []
    if remote is None:
        return [Found(DivergenceKind.MISSING_STRIPE, "subscription", local.stripe_id, local.app_id,
                      {"status": local.status, "price": local.price_id}, None, False)]
    if local is None:
        return [Found(DivergenceKind.MISSING_LOCAL, "subscription", remote.id, app_id, None,
                      {"status": remote.status, "price": remote.price_id, "customer": remote.customer},
                      remote.price_id in known_prices)]
    found = []
    common = dict(object_type="subscription", stripe_id=remote.id, app_id=local.app_id)
    if local.status != remote.status:
        legal = remote.status in _STATUSES and can_transition(SubscriptionStatus(local.status),
                                                               SubscriptionStatus(remote.status))
        found.append(Found(DivergenceKind.STATUS, local_value=local.status, stripe_value=remote.status, healable=legal,
                           **common))
    if local.price_id != remote.price_id:
        found.append(Found(DivergenceKind.PLAN, local_value=local.price_id, stripe_value=remote.price_id,
                           healable=remote.price_id in known_prices, **common))
    remote_period = [_unix(remote.current_period_start), _unix(remote.current_period_end)]
    if [local.period_start, local.period_end] != remote_period:
        found.append(Found(DivergenceKind.PERIOD, local_value=[local.period_start, local.period_end],
                           stripe_value=remote_period, healable=True, **common))
    return found


def compare_invoice(local: Optional[LocalInvoice], remote: Optional[Invoice], *,
                    app_id: Optional[int] = None) -> list[Found]:
    """What differs between our invoice row and Stripe's; Stripe is the truth for payment state."""
    if local is None and remote is None:
        return []
    if remote is None:
        return [Found(DivergenceKind.MISSING_STRIPE, "invoice", local.stripe_id, local.app_id,
                      {"status": local.status, "amount_due": local.amount_due, "currency": local.currency},
                      None, False)]
    if local is None:
        return [Found(DivergenceKind.MISSING_LOCAL, "invoice", remote.id, app_id, None,
                      {"status": remote.status, "amount_due": remote.amount_due, "currency": remote.currency},
                      True)]
    found = []
    common = dict(object_type="invoice", stripe_id=remote.id, app_id=local.app_id)
    local_paid = {"status": local.status, "amount_paid": local.amount_paid,
                  "amount_remaining": local.amount_remaining}
    remote_paid = {"status": remote.status, "amount_paid": remote.amount_paid,
                   "amount_remaining": remote.amount_remaining}
    if (local.status == "paid") != (remote.status == "paid") or local.amount_paid != remote.amount_paid \
            or local.amount_remaining != remote.amount_remaining:
        found.append(Found(DivergenceKind.PAID, local_value=local_paid, stripe_value=remote_paid, healable=True, **common))
    elif local.status != remote.status:
        found.append(Found(DivergenceKind.STATUS, local_value=local.status, stripe_value=remote.status, healable=True,
                           **common))
    if local.amount_due != remote.amount_due or local.currency != remote.currency:
        found.append(Found(DivergenceKind.AMOUNT, local_value={"amount_due": local.amount_due, "currency": local.currency},
                           stripe_value={"amount_due": remote.amount_due, "currency": remote.currency},
                           healable=True, **common))
    return found


# ---------------------------------------------------------------- loading our side in bulk


def _chunks(items: Sequence[str], size: int = LOAD_CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def load_subscriptions(session: Session, stripe_ids: Sequence[str]) -> dict[str, LocalSubscription]:
    rows = {}
    for chunk in _chunks(stripe_ids):
        query = (select(AppSubscription.stripe_subscription_id, AppSubscription.app_id, AppSubscription.status,
                        KernelPlan.stripe_price_id, AppSubscription.current_period_start,
                        AppSubscription.current_period_end)
                 .join(KernelPlan, KernelPlan.id == AppSubscription.plan_id)
                 .where(AppSubscription.stripe_subscription_id.in_(chunk)))
        for stripe_id, app_id, status, price, start, end in session.execute(query):
            rows[stripe_id] = LocalSubscription(stripe_id, app_id, str(status), price, _unix(start), _unix(end))
    return rows


def load_invoices(session: Session, stripe_ids: Sequence[str]) -> dict[str, LocalInvoice]:
    rows = {}
    for chunk in _chunks(stripe_ids):
        query = select(KernelInvoice.stripe_invoice_id, KernelInvoice.app_id, KernelInvoice.status,
                       KernelInvoice.amount_due, KernelInvoice.amount_paid, KernelInvoice.amount_remaining,
                       KernelInvoice.currency).where(KernelInvoice.stripe_invoice_id.in_(chunk))
        for row in session.execute(query):
            rows[row[0]] = LocalInvoice(*row)
    return rows


# ---------------------------------------------------------------- the walk


@dataclass
class Counters:
    api_calls: int = 0
    subscriptions: int = 0
    invoices: int = 0
    stripe_objects: int = 0


@dataclass
class Walk:
    """The state of one reconciliation while it walks Stripe's lists."""

    session: Session
    gateway: StripeGateway
    customers: dict[str, int]  # Stripe customer id -> our app id
    known_prices: frozenset[str]
    cutoff: datetime  # objects created after this are too fresh to be called missing
    on_progress: Callable[[int], None]
    counters: Counters = field(default_factory=Counters)
    found: list[Found] = field(default_factory=list)
    seen_subscriptions: set[str] = field(default_factory=set)
    seen_invoices: set[str] = field(default_factory=set)


def _subscription_page(walk: Walk, page: Page[Subscription]) -> None:
    ours = [remote for remote in page if remote.customer in walk.customers]
    rows = load_subscriptions(walk.session, [remote.id for remote in ours])
    for remote in ours:
        walk.seen_subscriptions.add(remote.id)
        local = rows.get(remote.id)
        if local is None and remote.created > walk.cutoff.timestamp():
            continue  # its webhook may still be on the way
        walk.found.extend(compare_subscription(local, remote, app_id=walk.customers[remote.customer],
                                               known_prices=walk.known_prices))
    walk.counters.subscriptions += len(ours)


def _invoice_page(walk: Walk, page: Page[Invoice]) -> None:
    ours = [remote for remote in page if remote.customer in walk.customers and remote.id]
    rows = load_invoices(walk.session, [remote.id for remote in ours])
    for remote in ours:
        walk.seen_invoices.add(remote.id)
        local = rows.get(remote.id)
        if local is None and (remote.status == "draft" or remote.created > walk.cutoff.timestamp()):
            continue  # drafts are finalized within the hour; fresh ones may still be on their way
        walk.found.extend(compare_invoice(local, remote, app_id=walk.customers[remote.customer]))
    walk.counters.invoices += len(ours)


def _only_ours(walk: Walk) -> None:
    """Our rows the walk never met in Stripe (older than the cut-off)."""
    missing = _ids_not_seen(walk.session, AppSubscription.stripe_subscription_id, AppSubscription.created_at,
                            walk.seen_subscriptions, walk.cutoff)
    for local in load_subscriptions(walk.session, missing).values():
        walk.found.extend(compare_subscription(local, None))
    walk.counters.subscriptions += len(missing)
    missing = _ids_not_seen(walk.session, KernelInvoice.stripe_invoice_id, KernelInvoice.created_at,
                            walk.seen_invoices, walk.cutoff)
    for local in load_invoices(walk.session, missing).values():
        walk.found.extend(compare_invoice(local, None))
    walk.counters.invoices += len(missing)


def _ids_not_seen(session: Session, id_column, created_column, seen: set[str], cutoff: datetime) -> list[str]:
    """Our Stripe ids the walk never met (one column, streamed), older than the cut-off."""
    query = select(id_column).where(created_column <= cutoff).execution_options(yield_per=5000)
    return [stripe_id for stripe_id in session.scalars(query) if stripe_id not in seen]


_DONE = object()


def _walk_both(walk: Walk) -> None:
    """Fetch both lists at once, each in a thread of its own; compare in this thread as pages arrive.

    Stripe (and the sandbox) answers the two lists in parallel, and this thread
    loads our rows and compares while the next pages are on their way. The queue is
    bounded, so at most a few pages wait in memory whatever the account's size.
    """
    pages: queue.Queue = queue.Queue(maxsize=PAGES_IN_FLIGHT)
    stop = threading.Event()
    lock = threading.Lock()

    def fetch(kind: str, lister: Callable[..., Page]) -> None:
        def counted(cursor: Optional[str]) -> Page:
            with lock:
                walk.counters.api_calls += 1
            return lister(starting_after=cursor, limit=PAGE_SIZE)

        try:
            for page in walk.gateway.iter_pages(counted):
                while not stop.is_set():
                    try:
                        pages.put((kind, page), timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            pages.put((kind, _DONE))
        except BaseException as error:  # handed to the comparing thread, which raises it
            pages.put((kind, error))

    fetchers = [threading.Thread(target=fetch, args=("subscriptions", walk.gateway.list_subscriptions),
                                 name="reconcile-subscriptions", daemon=True),
                threading.Thread(target=fetch, args=("invoices", walk.gateway.list_invoices),
                                 name="reconcile-invoices", daemon=True)]
    for fetcher in fetchers:
        fetcher.start()
    running = len(fetchers)
    try:
        while running:
            kind, page = pages.get()
            if page is _DONE:
                running -= 1
                continue
            if isinstance(page, BaseException):
                raise page
            walk.counters.stripe_objects += len(page.items)
            (_subscription_page if kind == "subscriptions" else _invoice_page)(walk, page)
            walk.on_progress(len(page.items))
    finally:
        stop.set()
        for fetcher in fetchers:
            fetcher.join(timeout=5)


def reconcile(session: Session, gateway: StripeGateway, *, trigger: str,
              on_progress: Optional[Callable[[int], None]] = None) -> ReconciliationRun:
    """Walk Stripe, compare, record every divergence with an alert; returns the finished run."""
    clock.refresh()
    started = clock.now()
    run = ReconciliationRun(trigger=trigger, status=RunStatus.RUNNING, started_at=started)
    session.add(run)
    session.commit()
    customers = dict(session.execute(select(App.stripe_customer_id, App.id)
                                      .where(App.stripe_customer_id.is_not(None))).tuples().all())
    known_prices = frozenset(session.scalars(select(KernelPlan.stripe_price_id)
                                             .where(KernelPlan.stripe_price_id.is_not(None))))
    walk = Walk(session, gateway, customers, known_prices, started - FRESH_GRACE, on_progress or (lambda n: None))
    try:
        _walk_both(walk)
        _only_ours(walk)
    except Exception as error:
        session.rollback()
        run = session.get(ReconciliationRun, run.id)
        run.status, run.error, run.finished_at = RunStatus.FAILED, f"{type(error).__name__}: {error}"[:2000], clock.now()
        run.api_calls = walk.counters.api_calls
        session.commit()
        raise
    record(session, run, walk.found)
    run.subscriptions_checked = walk.counters.subscriptions
    run.invoices_checked = walk.counters.invoices
    run.api_calls = walk.counters.api_calls
    run.divergence_count = len(walk.found)
    run.status = RunStatus.SUCCEEDED
    run.finished_at = clock.now()
    session.commit()
    log.info("reconciliation %s: %s subscriptions, %s invoices, %s divergences, %s API calls", run.id,
             run.subscriptions_checked, run.invoices_checked, run.divergence_count, run.api_calls)
    return run


def _dedupe_key(found: Found) -> str:
    values = json.dumps([found.local_value, found.stripe_value], sort_keys=True, default=str)
    digest = hashlib.sha256(values.encode()).hexdigest()[:16]
    return f"reconciliation:{found.object_type}:{found.stripe_id}:{found.kind.value}:{digest}"


def record(session: Session, run: ReconciliationRun, found: Iterable[Found]) -> list[ReconciliationDivergence]:
    """Store the divergences of ``run``, each tied to an alert raised once per distinct divergence."""
    stored = []
    for item in found:
        alert = audit.raise_alert(
            session, kind="reconciliation_divergence",
            severity=AlertSeverity.CRITICAL if item.kind in (DivergenceKind.PAID, DivergenceKind.AMOUNT, DivergenceKind.MISSING_STRIPE)
            else AlertSeverity.WARNING,
            app_id=item.app_id,
            message=f"Reconciliation: {item.object_type} {item.stripe_id} differs ({item.kind.value}): "
                    f"ours {json.dumps(item.local_value, default=str)}, "
                    f"Stripe {json.dumps(item.stripe_value, default=str)}.",
            details={"object_type": item.object_type, "stripe_id": item.stripe_id, "kind": item.kind.value,
                     "local": item.local_value, "stripe": item.stripe_value},
            dedupe_key=_dedupe_key(item),
        )
        if alert.id is None:
            session.flush()
        divergence = ReconciliationDivergence(run=run, app_id=item.app_id, kind=item.kind.value,
                                              object_type=item.object_type, stripe_id=item.stripe_id,
                                              local_value=item.local_value, stripe_value=item.stripe_value,
                                              healable=item.healable, alert_id=alert.id)
        session.add(divergence)
        stored.append(divergence)
    return stored


# ---------------------------------------------------------------- healing


class HealRefused(BillingError, ValueError):
    """This divergence cannot be healed by copying Stripe's state (or already was)."""


def heal(session: Session, gateway: StripeGateway, divergence: ReconciliationDivergence, *, origin: Origin) -> int:
    """Copy Stripe's state of the object onto our row through ``billing.sync``; returns divergences healed.

    One sync fixes every divergence of that object found by the same run, so they
    are all marked healed. The caller commits (or rolls back on an exception).
    """
    if divergence.healed_at is not None:
        raise HealRefused("already healed")
    if not divergence.healable:
        raise HealRefused("not safe to heal automatically")
    now = clock.now()
    if divergence.object_type == "subscription":
        result = sync_subscription_from_gateway(session, gateway, divergence.stripe_id, origin=origin)
    else:
        asked_ns = asking(gateway)
        remote = gateway.retrieve_invoice(divergence.stripe_id)
        result = sync_invoice(session, remote, observed_at=int(now.timestamp()), origin=origin, asked_ns=asked_ns,
                              refetch=refetch_invoice(gateway, divergence.stripe_id))
    if result.row is None:
        raise HealRefused(f"Stripe's object could not be applied ({result.outcome.value})")
    siblings = list(session.scalars(select(ReconciliationDivergence).where(
        ReconciliationDivergence.run_id == divergence.run_id,
        ReconciliationDivergence.stripe_id == divergence.stripe_id,
        ReconciliationDivergence.healed_at.is_(None))))
    for item in siblings:
        item.healed_at, item.healed_by_id = now, origin.actor_user_id
        if item.alert_id:
            alert = session.get(Alert, item.alert_id)
            if alert and alert.resolved_at is None:
                alert.resolved_at, alert.resolved_by_id = now, origin.actor_user_id
    audit.record(session, action="reconciliation.healed", object_type=divergence.object_type,
                 object_id=divergence.stripe_id, app_id=divergence.app_id,
                 before={item.kind: item.local_value for item in siblings},
                 after={item.kind: item.stripe_value for item in siblings},
                 origin=origin)
    return len(siblings)


# ---------------------------------------------------------------- the day's figures for the ERP


def day_window(day: date) -> tuple[datetime, datetime]:
    """The cut-off: 00:00 to 24:00 in São Paulo, as UTC instants."""
    return business_day_start(day), business_day_start(day + timedelta(days=1))


def _totals(rows: Iterable[tuple[str, int, int]]) -> dict[str, Any]:
    count, totals = 0, []
    for currency, n, amount in sorted(rows):
        count += n
        totals.append({"currency": currency, "amount": int(amount or 0)})
    return {"count": count, "totals": totals}


def _merge(*parts: Iterable[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    merged: dict[str, list[int]] = {}
    for part in parts:
        for currency, n, amount in part:
            entry = merged.setdefault(currency, [0, 0])
            entry[0] += n
            entry[1] += int(amount or 0)
    return [(currency, n, amount) for currency, (n, amount) in merged.items()]


def day_summary(session: Session, day: date, gateway_name: str = "stripe") -> dict[str, Any]:
    """Counts and sums (minor units, per currency) of what was paid, failed and refunded on ``day``."""
    start, end = day_window(day)
    paid_invoices = session.execute(
        select(KernelInvoice.currency, func.count(KernelInvoice.id), func.sum(KernelInvoice.amount_paid))
        .where(KernelInvoice.status == "paid", KernelInvoice.paid_at >= start, KernelInvoice.paid_at < end)
        .group_by(KernelInvoice.currency)).tuples().all()
    # One-off charges have no invoice; invoice payments are counted through their invoice above.
    paid_charges = session.execute(
        select(KernelPayment.currency, func.count(KernelPayment.id), func.sum(KernelPayment.amount))
        .where(KernelPayment.invoice_id.is_(None), KernelPayment.status == "succeeded",
               KernelPayment.paid_at >= start, KernelPayment.paid_at < end)
        .group_by(KernelPayment.currency)).tuples().all()
    failed = session.execute(
        select(KernelInvoice.currency, func.count(KernelPaymentAttempt.id), func.sum(KernelInvoice.amount_due))
        .join(KernelInvoice, KernelInvoice.id == KernelPaymentAttempt.invoice_id)
        .where(KernelPaymentAttempt.status == AttemptStatus.FAILED, KernelPaymentAttempt.attempted_at >= start,
               KernelPaymentAttempt.attempted_at < end)
        .group_by(KernelInvoice.currency)).tuples().all()
    refunded = session.execute(
        select(KernelRefund.currency, func.count(KernelRefund.id), func.sum(KernelRefund.amount))
        .where(KernelRefund.status.in_(("succeeded", "pending")), KernelRefund.created_at >= start,
               KernelRefund.created_at < end)
        .group_by(KernelRefund.currency)).tuples().all()
    divergences = session.scalars(
        select(ReconciliationDivergence)
        .where(ReconciliationDivergence.created_at >= start, ReconciliationDivergence.created_at < end)
        .order_by(ReconciliationDivergence.id)).all()
    runs = session.scalars(select(ReconciliationRun).where(ReconciliationRun.started_at >= start,
                                                           ReconciliationRun.started_at < end)
                           .order_by(ReconciliationRun.id)).all()
    return {
        "date": day.isoformat(),
        "gateway": gateway_name,
        "cutoff": {"timezone": str(BUSINESS_TIMEZONE), "from": start.isoformat(), "to": end.isoformat()},
        "paid": _totals(_merge(paid_invoices, paid_charges)),
        "failed": _totals(failed),
        "refunded": _totals(refunded),
        "reconciliation_runs": [{"id": run.id, "trigger": run.trigger, "status": run.status,
                                 "subscriptions_checked": run.subscriptions_checked,
                                 "invoices_checked": run.invoices_checked,
                                 "divergences": run.divergence_count} for run in runs],
        "divergences": {
            "count": len(divergences),
            "items": [{"id": item.id, "run": item.run_id, "kind": item.kind, "object_type": item.object_type,
                       "stripe_id": item.stripe_id, "app_id": item.app_id, "ours": item.local_value,
                       "stripe": item.stripe_value, "healable": item.healable,
                       "healed_at": item.healed_at.isoformat() if item.healed_at else None}
                      for item in divergences],
        },
    }

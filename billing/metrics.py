"""The portal's Prometheus metrics, in one place: counters bumped where things happen, figures read at scrape.

Two kinds, chosen by where the truth lives (names and definitions: ``docs/metrics.md``):

* **Counters of things that happen in a process** (checkouts opened, webhooks
  received and applied, how long applying took). They are prometheus-client
  counters. With several gunicorn workers and RQ work horses each process counts
  on its own, so ``PROMETHEUS_MULTIPROC_DIR`` must name a directory shared by the
  machine's processes (``scripts/run`` sets it; docs/runbooks/deploy.md): each
  process writes its own file and a scrape adds them up. RQ forks a work horse
  per job, so files of processes that are gone are folded into one archive file
  (``compact``) instead of piling up.
* **Figures the database already knows** (MRR, churn, payment outcomes, the
  webhook backlog and its age, the dunning queue). They are computed from the
  database at each scrape by ``DatabaseCollector``, so they are right however many
  processes or machines there are, and survive restarts.
"""
from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from typing import Callable, Optional

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from billing import clock
# The directory's housekeeping lives apart so that gunicorn's master can import it without the models.
from billing.metrics_files import (  # noqa: F401  (compact, process_exited and the rest: the housekeeping's API)
    ARCHIVE_PID,
    COMPACT_ABOVE,
    MULTIPROC_ENV,
    _dir_lock,
    compact,
    multiproc_dir,
    process_exited,
)
from billing.models import (
    Alert,
    AttemptStatus,
    GatewayIdempotencyConflict,
    KernelInvoice,
    KernelPayment,
    KernelPaymentAttempt,
    PaymentOutcome,
)
from billing.webhooks.backlog import backlog

log = logging.getLogger(__name__)

if os.environ.get(MULTIPROC_ENV):
    # The unlabeled metrics below open their file at import: a directory not made yet (a fresh tmpfs) is made.
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)

# ---------------------------------------------------------------- counters (bumped where it happens)

CHECKOUTS = Counter("kernel_billing_checkout", "Stripe Checkout sessions by plan, mode and outcome "
                    "(started: opened for an owner; completed: applied once, by redirect or webhook)",
                    ["plan", "mode", "outcome"])
WEBHOOKS_RECEIVED = Counter("kernel_billing_webhook_events_received", "Stripe webhook deliveries by event type and "
                            "outcome (recorded, duplicate, other_mode, or the reason it was refused)",
                            ["type", "outcome"])
WEBHOOKS_APPLIED = Counter("kernel_billing_webhook_events_applied", "Stripe events run through their handler, by "
                           "type and outcome (processed, ignored, failed)", ["type", "outcome"])
IDEMPOTENCY_CONFLICTS = Counter("kernel_billing_gateway_idempotency_conflicts", "Stripe refused a request because "
                                "its idempotency key was used before with other parameters")
APPLY_LATENCY = Histogram("kernel_billing_webhook_apply_latency_seconds", "From an event's receipt to its effects "
                          "committed (processed or ignored)",
                          buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600))


# Where refusals are also written down for the portal's own alert rule (billing/alert_rules.py): a table, so the
# rule job sees every process's. The portal sets it when it starts (``record_conflicts_in``); unset, only counted.
_conflicts_engine: Optional[Engine] = None


def record_conflicts_in(engine: Optional[Engine]) -> None:
    global _conflicts_engine
    _conflicts_engine = engine


def idempotency_conflict(request_id: Optional[str] = None, message: Optional[str] = None) -> None:
    """Stripe refused a reused idempotency key: counted, and recorded in ``gateway_idempotency_conflicts``."""
    IDEMPOTENCY_CONFLICTS.inc()
    if _conflicts_engine is None:
        return
    try:
        # A transaction of its own, after Stripe answered: the caller's may roll back, the refusal stays known.
        with _conflicts_engine.begin() as connection:
            connection.execute(insert(GatewayIdempotencyConflict).values(
                occurred_at=datetime.now(timezone.utc), request_id=request_id, message=(message or "")[:500]))
    except SQLAlchemyError:  # the count above and the caller's error stand; the alert then comes from Prometheus
        log.exception("could not record an idempotency-key conflict")


def checkout(plan: Optional[str], mode: str, outcome: str) -> None:
    CHECKOUTS.labels(plan or "none", mode, outcome).inc()


def webhook_received(event_type: Optional[str], outcome: str) -> None:
    WEBHOOKS_RECEIVED.labels(event_type or "unknown", outcome).inc()


def webhook_applied(event_type: str, outcome: str, received_at: Optional[datetime] = None,
                    now: Optional[datetime] = None) -> None:
    WEBHOOKS_APPLIED.labels(event_type, outcome).inc()
    if received_at is not None and outcome != "failed":
        elapsed = ((now or datetime.now(timezone.utc)) - received_at).total_seconds()
        APPLY_LATENCY.observe(max(elapsed, 0.0))


# ---------------------------------------------------------------- figures (read from the database at scrape)

def dunning_queue(session: Session) -> tuple[int, int]:
    """(invoices in dunning, retries still scheduled)."""
    invoices = session.scalar(
        select(func.count(func.distinct(KernelInvoice.id)))
        .join(KernelPaymentAttempt, (KernelPaymentAttempt.invoice_id == KernelInvoice.id)
              & (KernelPaymentAttempt.attempt_number == 0))
        .where(KernelInvoice.dunning_closed_at.is_(None)))
    retries = session.scalar(select(func.count(KernelPaymentAttempt.id))
                             .where(KernelPaymentAttempt.status == AttemptStatus.SCHEDULED))
    return int(invoices or 0), int(retries or 0)


def invoices_charged_twice(session: Session) -> list[str]:
    """Invoices with more than one successful charge not refunded in full: what idempotency keys exist to prevent
    (a second charge refunded in full is the remedy, and clears it)."""
    return list(session.scalars(
        select(KernelInvoice.stripe_invoice_id)
        .join(KernelPayment, KernelPayment.invoice_id == KernelInvoice.id)
        .where(KernelPayment.status == "succeeded", KernelPayment.amount_refunded < KernelPayment.amount)
        .group_by(KernelInvoice.stripe_invoice_id).having(func.count(KernelPayment.id) > 1)
        .order_by(KernelInvoice.stripe_invoice_id)))


class DatabaseCollector:
    """The figures the database knows, computed at each scrape with a session from ``session_factory``."""

    def __init__(self, session_factory: Callable[[], Session]):
        self._session_factory = session_factory

    def collect(self):
        session = self._session_factory()
        try:
            yield from self._payments(session)
            yield from self._money(session)
            yield from self._queues(session)
        finally:
            session.close()  # read only: nothing to commit

    def _payments(self, session: Session):
        succeeded = CounterMetricFamily("kernel_billing_payment_success", "Charge attempts that succeeded, by the "
                                        "app's plan at the time", labels=["plan"])
        failed = CounterMetricFamily("kernel_billing_payment_failed", "Charge attempts that failed, by the app's plan "
                                     "at the time and Stripe's decline or error code", labels=["plan", "reason"])
        rows = session.execute(select(PaymentOutcome.outcome, PaymentOutcome.plan_code, PaymentOutcome.reason,
                                      func.count(PaymentOutcome.id))
                               .group_by(PaymentOutcome.outcome, PaymentOutcome.plan_code, PaymentOutcome.reason))
        for outcome, plan, reason, count in rows:
            if outcome == "succeeded":
                succeeded.add_metric([plan or "none"], count)
            else:
                failed.add_metric([plan or "none", reason or "unknown"], count)
        yield succeeded
        yield failed

    def _money(self, session: Session):
        from billing.snapshots import current_figures  # here: the billing modules that count import this one

        mrr = GaugeMetricFamily("kernel_billing_mrr", "Monthly recurring revenue in minor units (centavos) of "
                                "paying subscriptions", labels=["currency"])
        churn = GaugeMetricFamily("kernel_billing_churn_rate", "Of the subscriptions live 30 days ago, the share "
                                  "that ended since (0..1)", labels=["currency"])
        active = GaugeMetricFamily("kernel_billing_active_subscriptions", "Subscriptions counted in the MRR",
                                   labels=["currency"])
        for currency, figures in current_figures(session, clock.now()).items():
            mrr.add_metric([currency], figures.mrr)
            active.add_metric([currency], figures.active_count)
            churn.add_metric([currency], figures.churn_rate or 0.0)
        yield mrr
        yield churn
        yield active

    def _queues(self, session: Session):
        now = datetime.now(timezone.utc)  # receipt times are wall-clock time
        waiting = backlog(session, now)
        yield GaugeMetricFamily("kernel_billing_webhook_backlog", "Stripe events waiting to be applied (received, "
                                "or failed with a retry to come)", value=waiting.waiting)
        yield GaugeMetricFamily("kernel_billing_webhook_oldest_waiting_seconds", "Age of the oldest Stripe event "
                                "waiting to be applied (0 when none waits)", value=waiting.oldest_age or 0.0)
        yield GaugeMetricFamily("kernel_billing_webhook_retry_queue", "Stripe events that failed and wait for a "
                                "retry or a replay", value=waiting.retry_queue)
        yield GaugeMetricFamily("kernel_billing_invoices_charged_twice", "Invoices charged successfully more than "
                                "once (not refunded)", value=len(invoices_charged_twice(session)))
        alerts = GaugeMetricFamily("kernel_billing_open_alerts", "Open alerts by kind and severity",
                                   labels=["kind", "severity"])
        for kind, severity, count in session.execute(
                select(Alert.kind, Alert.severity, func.count(Alert.id)).where(Alert.resolved_at.is_(None))
                .group_by(Alert.kind, Alert.severity)):
            alerts.add_metric([kind, severity.value], count)
        yield alerts
        invoices, retries = dunning_queue(session)
        yield GaugeMetricFamily("kernel_billing_dunning_invoices", "Invoices in dunning (failed renewal, not ended)",
                                value=invoices)
        yield GaugeMetricFamily("kernel_billing_dunning_retries_scheduled", "Dunning retries scheduled and not run "
                                "yet", value=retries)


# ---------------------------------------------------------------- the scrape, and multiprocess housekeeping

class _LockedMultiProcessCollector(MultiProcessCollector):
    def collect(self):
        with _dir_lock(self._path, exclusive=False):
            return list(super().collect())


def registry(session_factory: Callable[[], Session]) -> CollectorRegistry:
    """What ``/metrics`` serves: every process's counters (or this process's, without a shared directory) and the
    database's figures."""
    scrape = CollectorRegistry(auto_describe=False)
    path = multiproc_dir()
    if path:
        _LockedMultiProcessCollector(scrape, path)
    else:
        for metric in (CHECKOUTS, WEBHOOKS_RECEIVED, WEBHOOKS_APPLIED, APPLY_LATENCY, IDEMPOTENCY_CONFLICTS):
            scrape.register(metric)
    scrape.register(DatabaseCollector(session_factory))
    return scrape

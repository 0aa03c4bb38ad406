"""Alert rules, evaluated into the ``alerts`` table by a job every minute (``jobs/alerts.py``).

Each rule looks at the database and returns what is wrong now, one ``Firing`` per
scope (a currency, or the whole system). ``evaluate`` then makes the table agree:

* a condition that fires and has no open alert raises one, whose ``dedupe_key``
  is ``rule:<rule>:<scope>:open``; the unique key keeps it to one open alert per
  rule and scope however many evaluators run at once;
* a condition that still fires keeps its alert (its message and figures updated);
* an open rule alert whose condition no longer fires is resolved, and its key
  becomes ``rule:<rule>:<scope>:resolved:<id>``, so the next episode opens anew;
* alerts raised elsewhere whose cause is gone are resolved too (a failed payment
  later paid, a reconciliation divergence healed).

Critical alerts, when raised, are e-mailed to every superadmin through the outbox
when SMTP is configured. The same rules, for Prometheus, are in
``docs/prometheus-rules.yml``; what each means and what to do: ``docs/runbooks/alerts.md``.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing import audit
from billing.audit import Origin
from billing.db import insert_once
from billing.metrics import invoices_charged_twice
from billing.webhooks.backlog import backlog
from billing.models import (
    Alert,
    AlertSeverity,
    GatewayIdempotencyConflict,
    KernelInvoice,
    KernelPayment,
    OutboxMessage,
    OutboxStatus,
    ProcessedWebhook,
    ReconciliationDivergence,
    Role,
    User,
    WebhookStatus,
)
from billing.snapshots import mrr_by_currency, payments_by_currency, snapshot_before

log = logging.getLogger(__name__)

# Payment failure rate: over the last hour, once at least 20 attempts were made (fewer is noise: two declines
# out of five is not an incident).
FAILURE_RATE_LIMIT = 0.10
FAILURE_RATE_WINDOW = timedelta(hours=1)
FAILURE_RATE_MIN_ATTEMPTS = 20
# MRR down more than 20% against the snapshot of 24 hours ago (one taken at most 2 hours before that moment).
MRR_DROP_LIMIT = 0.20
MRR_LOOKBACK = timedelta(hours=24)
MRR_SNAPSHOT_SLACK = timedelta(hours=2)
# Webhook processing: the oldest event waiting, or the p99 of receipt -> applied over 5 minutes (20 events or more).
WEBHOOK_LAG_LIMIT = timedelta(seconds=5)
WEBHOOK_P99_WINDOW = timedelta(minutes=5)
WEBHOOK_P99_MIN_EVENTS = 20
RETRY_QUEUE_LIMIT = 100
# Idempotency-key refusals by Stripe: any in the last 15 minutes (docs/prometheus-rules.yml uses the same window).
IDEMPOTENCY_CONFLICT_WINDOW = timedelta(minutes=15)

RULE_PREFIX = "rule:"
ALERT_RULES = Origin(actor="job:alerts")


@dataclass(frozen=True)
class Firing:
    rule: str
    scope: str  # "all", or a currency
    severity: AlertSeverity
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{RULE_PREFIX}{self.rule}:{self.scope}:open"


def payment_failure_rate(session: Session, now: datetime) -> list[Firing]:
    firing = []
    for currency, (succeeded, failed) in payments_by_currency(session, now - FAILURE_RATE_WINDOW, now).items():
        attempts = succeeded + failed
        if attempts >= FAILURE_RATE_MIN_ATTEMPTS and failed > FAILURE_RATE_LIMIT * attempts:
            firing.append(Firing(
                "payment_failure_rate", currency, AlertSeverity.CRITICAL,
                f"{failed} of {attempts} payment attempts in {currency} failed in the last hour "
                f"({failed / attempts:.0%}, limit {FAILURE_RATE_LIMIT:.0%}).",
                {"failed": failed, "attempts": attempts, "window_minutes": 60}))
    return firing


def mrr_drop(session: Session, now: datetime) -> list[Firing]:
    firing = []
    current = {currency: mrr for currency, (mrr, _) in mrr_by_currency(session).items()}
    then = now - MRR_LOOKBACK
    for snapshot in filter(None, (snapshot_before(session, currency, then)
                                  for currency in {*current, *_snapshot_currencies(session)})):
        if snapshot.taken_at < then - MRR_SNAPSHOT_SLACK or snapshot.mrr <= 0:
            continue  # no figure from 24 hours ago to compare with
        now_mrr = current.get(snapshot.currency, 0)
        if now_mrr < (1 - MRR_DROP_LIMIT) * snapshot.mrr:
            firing.append(Firing(
                "mrr_drop", snapshot.currency, AlertSeverity.CRITICAL,
                f"MRR in {snapshot.currency} fell from {snapshot.mrr} to {now_mrr} (minor units) in 24 hours "
                f"({(snapshot.mrr - now_mrr) / snapshot.mrr:.0%} down, limit {MRR_DROP_LIMIT:.0%}).",
                {"mrr_then": snapshot.mrr, "mrr_now": now_mrr, "snapshot_at": snapshot.taken_at.isoformat()}))
    return firing


def _snapshot_currencies(session: Session) -> set[str]:
    from billing.models import MrrSnapshot

    return set(session.scalars(select(MrrSnapshot.currency).distinct()))


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(0.99 * len(ordered)) - 1, 0)]


def webhook_lag(session: Session, now: datetime) -> list[Firing]:
    wall = datetime.now(timezone.utc)  # receipt times are wall-clock time, whatever the billing clock says
    queue = backlog(session, wall)
    waiting, oldest = queue.waiting, queue.oldest_age or 0.0
    rows = session.execute(select(ProcessedWebhook.received_at, ProcessedWebhook.processed_at)
                           .where(ProcessedWebhook.processed_at > wall - WEBHOOK_P99_WINDOW,
                                  ProcessedWebhook.status == WebhookStatus.PROCESSED)).all()
    latencies = [(processed - received).total_seconds() for received, processed in rows]
    p99 = _p99(latencies) if len(latencies) >= WEBHOOK_P99_MIN_EVENTS else None
    limit = WEBHOOK_LAG_LIMIT.total_seconds()
    if oldest > limit or (p99 is not None and p99 > limit):
        return [Firing("webhook_lag", "all", AlertSeverity.CRITICAL,
                       f"Stripe events are applied late: {waiting} waiting, the oldest for {oldest:.0f} s"
                       + (f"; p99 over 5 minutes {p99:.1f} s" if p99 is not None else "") + f" (limit {limit:.0f} s).",
                       {"waiting": waiting, "oldest_seconds": round(oldest, 1),
                        "p99_seconds": None if p99 is None else round(p99, 2)})]
    return []


def retry_queue(session: Session, now: datetime) -> list[Firing]:
    queued = backlog(session).retry_queue
    if queued > RETRY_QUEUE_LIMIT:
        return [Firing("retry_queue", "all", AlertSeverity.WARNING,
                       f"{queued} Stripe events failed and wait for a retry or a replay (limit {RETRY_QUEUE_LIMIT}).",
                       {"queued": queued})]
    return []


def gateway_idempotency(session: Session, now: datetime) -> list[Firing]:
    """Stripe refused an idempotency key used before with other parameters (in the last 15 minutes, as the
    Prometheus rule's ``increase(...[15m])``), or an invoice was charged successfully twice: what keys exist to
    prevent. Resolves once 15 minutes pass without a refusal and no invoice is charged twice."""
    since = datetime.now(timezone.utc) - IDEMPOTENCY_CONFLICT_WINDOW  # refusals are stamped with the wall clock
    conflicts = session.execute(
        select(func.count(GatewayIdempotencyConflict.id), func.max(GatewayIdempotencyConflict.request_id))
        .where(GatewayIdempotencyConflict.occurred_at > since)).one()
    invoices = invoices_charged_twice(session)
    if not invoices and not conflicts[0]:
        return []
    problems = []
    if conflicts[0]:
        problems.append(f"Stripe refused {conflicts[0]} reused idempotency key(s) in the last 15 minutes "
                        f"(one request: {conflicts[1] or 'no request id'})")
    if invoices:
        problems.append(f"{len(invoices)} invoice(s) charged successfully more than once: {', '.join(invoices[:10])}")
    return [Firing("BillingGatewayIdempotency", "all", AlertSeverity.CRITICAL, "; ".join(problems) + ".",
                   {"invoices": invoices[:50], "conflicts_15m": conflicts[0]})]


RULES: dict[str, Callable[[Session, datetime], list[Firing]]] = {
    "payment_failure_rate": payment_failure_rate,
    "mrr_drop": mrr_drop,
    "webhook_lag": webhook_lag,
    "retry_queue": retry_queue,
    "BillingGatewayIdempotency": gateway_idempotency,
}


# ---------------------------------------------------------------- alerts whose cause is gone

def _causes_gone(session: Session) -> list[Alert]:
    """Open alerts raised elsewhere whose cause has since gone away."""
    gone = []
    for alert in session.scalars(select(Alert).where(Alert.resolved_at.is_(None), Alert.kind.in_(
            ("payment_intent_failed", "invoice_payment_failed", "reconciliation_divergence")))):
        details = alert.details or {}
        if alert.kind == "payment_intent_failed":
            status = session.scalar(select(KernelPayment.status).where(
                KernelPayment.stripe_payment_intent_id == details.get("payment_intent")))
            if status == "succeeded":
                gone.append(alert)
        elif alert.kind == "invoice_payment_failed":
            status = session.scalar(select(KernelInvoice.status).where(
                KernelInvoice.stripe_invoice_id == details.get("invoice")))
            if status in ("paid", "void"):
                gone.append(alert)
        else:
            open_divergences = session.scalar(select(func.count(ReconciliationDivergence.id)).where(
                ReconciliationDivergence.alert_id == alert.id, ReconciliationDivergence.healed_at.is_(None)))
            healed = session.scalar(select(func.count(ReconciliationDivergence.id)).where(
                ReconciliationDivergence.alert_id == alert.id, ReconciliationDivergence.healed_at.is_not(None)))
            if healed and not open_divergences:
                gone.append(alert)
    return gone


# ---------------------------------------------------------------- evaluation

@dataclass
class Evaluation:
    raised: list[Alert] = field(default_factory=list)
    kept: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)


def _resolve(session: Session, alert: Alert, now: datetime, why: str) -> None:
    alert.resolved_at = now
    if alert.dedupe_key and alert.dedupe_key.startswith(RULE_PREFIX) and alert.dedupe_key.endswith(":open"):
        alert.dedupe_key = f"{alert.dedupe_key.removesuffix(':open')}:resolved:{alert.id}"
    audit.record(session, action="alert.auto_resolved", object_type="alert", object_id=alert.id, app_id=alert.app_id,
                 before={"resolved": False, "kind": alert.kind}, after={"resolved": True, "kind": alert.kind,
                                                                         "why": why}, origin=ALERT_RULES)


def evaluate(session: Session, now: datetime, *, smtp_configured: bool = False) -> Evaluation:
    """Run every rule and make the open rule alerts agree with what fires; the caller commits."""
    result = Evaluation()
    firing = {f.key: f for rule in RULES.values() for f in rule(session, now)}
    open_rule_alerts = {alert.dedupe_key: alert for alert in session.scalars(
        select(Alert).where(Alert.resolved_at.is_(None), Alert.dedupe_key.like(f"{RULE_PREFIX}%:open")))}
    for key, alert in open_rule_alerts.items():
        if key not in firing:
            _resolve(session, alert, now, "condition cleared")
            result.resolved.append(alert)
    for key, fire in firing.items():
        alert = open_rule_alerts.get(key)
        if alert is not None:
            alert.message, alert.details = fire.message, {**fire.details, "rule": fire.rule, "scope": fire.scope}
            result.kept.append(alert)
            continue
        alert = Alert(kind=fire.rule, severity=fire.severity, message=fire.message, dedupe_key=key,
                      details={**fire.details, "rule": fire.rule, "scope": fire.scope}, created_at=now)
        if not insert_once(session, alert):
            continue  # another evaluator raised it at the same moment
        result.raised.append(alert)
        log.warning("alert raised: %s", fire.message, extra={"event": "alert.raised", "rule": fire.rule,
                                                             "scope": fire.scope, "severity": fire.severity.value})
        if fire.severity == AlertSeverity.CRITICAL:
            email_superadmins(session, alert, smtp_configured=smtp_configured)
    for alert in _causes_gone(session):
        _resolve(session, alert, now, "cause gone")
        result.resolved.append(alert)
    return result


def email_superadmins(session: Session, alert: Alert, *, smtp_configured: bool) -> list[OutboxMessage]:
    """A critical alert, to every active superadmin by e-mail; nothing when SMTP is not configured (the alerts page
    shows it either way)."""
    if not smtp_configured:
        return []
    messages = []
    for email in session.scalars(select(User.email).where(User.role == Role.SUPERADMIN, User.active.is_(True))):
        key = f"alert:{alert.id}:{email}"
        if session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)):
            continue
        message = OutboxMessage(to_email=email, kind="alert.critical", subject=f"[kernel billing] {alert.kind}",
                                body=f"{alert.message}\n\nAdmin -> Alerts. What to do: docs/runbooks/alerts.md "
                                     f"({alert.kind}).", dedupe_key=key, status=OutboxStatus.PENDING)
        session.add(message)
        messages.append(message)
    return messages


def acknowledge(alert: Alert, *, user_id: int, now: datetime) -> bool:
    """A superadmin has seen ``alert``: it says so and by whom; a rule's alert stays open until its condition
    clears. False when it was acknowledged already."""
    if alert.acknowledged_at is not None:
        return False
    alert.acknowledged_at, alert.acknowledged_by_id = now, user_id
    return True


def is_rule_alert(alert: Alert) -> bool:
    return bool(alert.dedupe_key and alert.dedupe_key.startswith(RULE_PREFIX))


__all__ = ["RULES", "Firing", "evaluate", "acknowledge", "email_superadmins", "is_rule_alert"]

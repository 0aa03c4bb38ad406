"""Processing one recorded Stripe event: run its handler, then say so on its row, atomically.

The handler's changes and the row's new status are committed together, so an
event is never marked processed unless its effects were stored. When the handler
fails, everything it did is rolled back and the error is written on the row
(``attempts`` + 1, ``last_error``) in a transaction of its own; the exception then
goes back to RQ, which retries with backoff. Errors that a retry cannot cure
(a price we do not sell) are not retried: an alert is raised and the event waits,
failed, for a superadmin to replay it from the events page.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing import audit, control, metrics
from billing.audit import Origin
from billing.gateway import StripeGateway
from billing.models import Alert, AlertSeverity, ProcessedWebhook, WebhookStatus
from billing.redaction import redact
from billing.sync import UnknownPrice
from billing.webhooks.events import Event
from billing.webhooks.handlers import HANDLERS, Handled, HandlerContext

log = logging.getLogger(__name__)

# Retrying cannot make Stripe's price one of ours: a person has to look.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (UnknownPrice,)
SETTLED = (WebhookStatus.PROCESSED, WebhookStatus.IGNORED)
MAX_ERROR_LENGTH = 4000


def _now() -> datetime:
    # Operational timestamps are wall-clock time, like received_at.
    return datetime.now(timezone.utc)


def load(session: Session, event_id: str, *, lock: bool = False) -> Optional[ProcessedWebhook]:
    query = select(ProcessedWebhook).where(ProcessedWebhook.event_id == event_id)
    if lock:
        # A retry and a replay of the same event must not run side by side.
        query = query.with_for_update()
    return session.scalar(query)


def failure_alert_key(event_id: str) -> str:
    return f"webhook_failed:{event_id}"


def why_ignored(row: ProcessedWebhook, gateway_livemode: bool) -> str:
    """A short reason for an ignored event, for the events page."""
    if row.livemode != gateway_livemode:
        return "livemode_mismatch"
    if row.type not in HANDLERS:
        return "no_handler"
    return "not_ours"


def process(session: Session, gateway: StripeGateway, event_id: str, *, smtp_configured: bool = False,
            final_attempt: bool = True) -> Optional[WebhookStatus]:
    """Run the handler of the recorded event ``event_id``; returns the row's new status.

    Raises the handler's exception (after recording it) when a retry may help and
    ``final_attempt`` is false, so the job queue retries later.
    """
    row = load(session, event_id, lock=True)
    if row is None:
        log.warning("no recorded event %s: nothing to process", event_id)
        return None
    if row.status in SETTLED:
        settled = row.status
        log.info("already %s: nothing to do", settled)
        session.rollback()
        return settled

    event = Event.parse(row.payload)
    if control.holds_event(session, event):  # billing paused: stays received; resuming queues it again
        log.info("%s held: billing is paused", event.type)
        session.rollback()
        return WebhookStatus.RECEIVED
    origin = Origin(actor="webhook", correlation_id=event.id)
    received_at = row.received_at
    try:
        if row.livemode != gateway.livemode:
            log.info("%s is from the other mode (livemode=%s): ignored", event.type, row.livemode)
            status = WebhookStatus.IGNORED
        elif event.type not in HANDLERS:
            log.info("no handler for %s: ignored", event.type)
            status = WebhookStatus.IGNORED
        else:
            context = HandlerContext(session, gateway, event, origin, smtp_configured=smtp_configured)
            handled = HANDLERS[event.type](context)
            status = WebhookStatus.PROCESSED if handled == Handled.DONE else WebhookStatus.IGNORED
            if handled == Handled.NOT_OURS:
                log.info("%s is about %s, which is not ours: ignored", event.type, event.object_id)
        row.status = status
        row.attempts += 1
        row.processed_at = _now()
        _resolve_failure_alert(session, event.id)
        session.commit()
    except Exception as error:
        session.rollback()
        permanent = isinstance(error, PERMANENT_ERRORS)
        _record_failure(session, event, error, alert=permanent or final_attempt)
        session.commit()
        metrics.webhook_applied(event.type, WebhookStatus.FAILED.value)
        applied = {"event": "webhook.applied", "type": event.type, "event_id": event.id, "outcome": "failed",
                   "retried": not (permanent or final_attempt)}
        if permanent:
            log.error("%s failed and a retry cannot help: %s", event.type, error, extra=applied)
            return WebhookStatus.FAILED
        log.warning("%s failed (%s)%s", event.type, error, "" if final_attempt else "; will be retried", extra=applied)
        raise
    metrics.webhook_applied(event.type, status.value, received_at)
    log.info("%s %s", event.type, status, extra={"event": "webhook.applied", "type": event.type,
                                                 "event_id": event.id, "outcome": status.value})
    return status


def _record_failure(session: Session, event: Event, error: BaseException, *, alert: bool) -> None:
    row = load(session, event.id, lock=True)
    message = redact(f"{type(error).__name__}: {error}")[:MAX_ERROR_LENGTH]
    row.status = WebhookStatus.FAILED
    row.attempts += 1
    row.last_error = message
    if alert:
        audit.raise_alert(
            session, kind="webhook_failed", severity=AlertSeverity.CRITICAL,
            message=f"Stripe event {event.id} ({event.type}) could not be processed: {message}",
            details={"event": event.id, "type": event.type, "object": event.object_id},
            dedupe_key=failure_alert_key(event.id),
        )


def _resolve_failure_alert(session: Session, event_id: str) -> None:
    alert = session.scalar(select(Alert).where(Alert.dedupe_key == failure_alert_key(event_id),
                                               Alert.resolved_at.is_(None)))
    if alert is not None:
        alert.resolved_at = _now()


def request_replay(session: Session, row: ProcessedWebhook, *, user_id: Optional[int]) -> None:
    """Put a recorded event back in line (the caller enqueues its job after committing)."""
    before = {"status": row.status.value, "attempts": row.attempts}
    row.status = WebhookStatus.RECEIVED
    audit.record(session, action="webhook.replay_requested", object_type="processed_webhook", object_id=row.event_id,
                 before=before, after={"status": WebhookStatus.RECEIVED.value},
                 origin=Origin(actor="user", actor_user_id=user_id, correlation_id=row.event_id))

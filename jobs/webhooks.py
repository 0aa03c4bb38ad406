"""RQ jobs for Stripe events: process one (``process_event``), and queue the ones whose hand-off was lost
(``sweep_inbox``).

The web endpoint records the event and pushes its id onto ``webhooks:inbox``; the
pump (``jobs/webhook_pump.py``) turns it into a ``process_event`` job on the
``webhooks`` queue with a retry policy, and the job runs the event's handler
through ``billing.webhooks.processing``. Every log line it writes carries the
event id.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Optional

from flask import current_app
from rq import Queue, get_current_job
from rq.job import Job
from sqlalchemy import select

from billing.control import open_pause
from billing.models import ProcessedWebhook, WebhookStatus
from billing.webhooks import processing
from billing.webhooks.correlation import correlated
from jobs.context import in_app_context
from jobs.queues import WEBHOOKS, redis_connection
from jobs.webhook_pump import create_job, job_id, retry_policy
from portal.extensions import db
from portal.payments import gateway

log = logging.getLogger(__name__)

# Normally the pump turns an id into a job within milliseconds; an event still waiting after this
# long, with no job, lost its hand-off (Redis down at that moment, restarted empty, no pump running).
SWEEP_AFTER = timedelta(seconds=30)
SWEEP_BATCH = 1000  # per run (every minute): a backlog larger than that is cleared over a few runs


def _final_attempt() -> bool:
    """Whether a failure now is the last word (no retry left, or jobs run inline without retries)."""
    if not current_app.config["RQ_ASYNC"]:
        return True
    job = get_current_job()
    return job is None or not job.retries_left


@in_app_context
def process_event(event_id: str) -> Optional[str]:
    with correlated(event_id):
        final = _final_attempt()
        log.info("processing Stripe event%s", "" if not final else " (last attempt)")
        status = processing.process(db.session, gateway(), event_id,
                                    smtp_configured=bool(current_app.config.get("SMTP_URL")),
                                    final_attempt=final)
        return status.value if status else None


@in_app_context
def sweep_inbox(now: Optional[datetime] = None) -> int:
    """Queue every event still ``received`` after ``SWEEP_AFTER`` that has no job; returns how many were queued.

    The safety net of the endpoint's hand-off. Running it twice queues nothing twice:
    an event whose job exists (waiting, running, retrying or over) is left alone.
    """
    now = now or datetime.now(timezone.utc)
    if open_pause(db.session) is not None:  # billing paused: events wait, held; resuming queues them
        db.session.rollback()
        return 0
    event_ids = list(db.session.scalars(
        select(ProcessedWebhook.event_id)
        .where(ProcessedWebhook.status == WebhookStatus.RECEIVED, ProcessedWebhook.received_at < now - SWEEP_AFTER)
        .order_by(ProcessedWebhook.received_at, ProcessedWebhook.id).limit(SWEEP_BATCH)))
    db.session.rollback()  # no transaction held while talking to Redis
    if not event_ids:
        return 0
    connection = redis_connection(current_app.config["REDIS_URL"])
    with connection.pipeline(transaction=False) as pipe:
        for event_id in event_ids:
            pipe.exists(Job.key_for(job_id(event_id)))
        exists = pipe.execute()
    lost = [event_id for event_id, found in zip(event_ids, exists) if not found]
    if not lost:
        return 0
    queue = Queue(WEBHOOKS, connection=connection)
    retry = retry_policy(current_app.config)
    with connection.pipeline() as pipe:
        for event_id in lost:
            create_job(queue, event_id, retry, pipeline=pipe)
        pipe.execute()
    log.warning("queued %d recorded Stripe events whose hand-off was lost (oldest %s)", len(lost), lost[0])
    return len(lost)

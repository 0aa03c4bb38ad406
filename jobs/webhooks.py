"""RQ job: process one recorded Stripe event (``jobs.webhooks.process_event``).

The web endpoint records the event and enqueues this job on the ``webhooks``
queue with a retry policy; the job runs the event's handler through
``billing.webhooks.processing``. Every log line it writes carries the event id.
"""
from __future__ import annotations

import logging
from typing import Optional

from flask import current_app
from rq import get_current_job

from billing.webhooks import processing
from billing.webhooks.correlation import correlated
from jobs.context import in_app_context
from portal.extensions import db
from portal.payments import gateway

log = logging.getLogger(__name__)


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

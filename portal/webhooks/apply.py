"""Applying one recorded event now, in this process, as a worker would.

Used where no worker runs (tests with ``RQ_ASYNC`` off, an admin's replay, a resume of held
events) and by the worker's ``jobs.webhooks`` itself: the rule lives here, in the portal, so that
the portal never imports ``jobs`` (``tests/test_layers.py``).
"""
from __future__ import annotations

import logging
from typing import Optional

from flask import current_app
from sqlalchemy import select

from billing.models import ProcessedWebhook
from billing.webhooks import processing
from billing.webhooks.correlation import correlated
from portal.extensions import db
from portal.payments import gateway

log = logging.getLogger(__name__)


def process_event(event_id: str) -> Optional[str]:
    """Apply ``event_id`` now, in this process; returns its status (None when it was never recorded)."""
    with correlated(event_id):
        settled = processing.apply_now(db.session, gateway(), [event_id],
                                       smtp_configured=bool(current_app.config.get("SMTP_URL")))
        if event_id in settled:
            return settled[event_id].value
        status = db.session.scalar(select(ProcessedWebhook.status).where(ProcessedWebhook.event_id == event_id))
        if status is None:
            log.warning("no recorded event %s: nothing to process", event_id)
            return None
        log.info("already %s: nothing to do", status)
        return status.value

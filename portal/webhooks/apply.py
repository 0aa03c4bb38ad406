"""Applying one recorded Stripe event at once, in this process, as a worker would.

For the portal's own callers (the endpoint with ``RQ_ASYNC`` off, the admin's replay,
resuming billing) and the worker's module alike; here, in the portal, so that the portal
never imports ``jobs`` (which imports the portal to build its app context).
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
    """Apply ``event_id`` now, in this process; returns its status (None when it was never recorded).

    In an app context (so a database session) of its own: the caller's session, a request's, is left as it is.
    """
    with current_app._get_current_object().app_context(), correlated(event_id):
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

"""Daily upkeep of the Billing Gateway API: forget idempotent answers older than their retention (48 h)."""
from __future__ import annotations

import logging

from billing.gateway_api import purge_idempotency_keys
from jobs.context import in_app_context

log = logging.getLogger(__name__)


@in_app_context
def purge_idempotency() -> int:
    """Delete stored answers past the retention; a key younger than 24 hours is never touched."""
    from portal.extensions import db

    removed = purge_idempotency_keys(db.session)
    db.session.commit()
    log.info("gateway API: %d stored idempotent answers purged", removed)
    return removed

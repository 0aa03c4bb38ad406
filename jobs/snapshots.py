"""The hourly snapshot of the money figures (``billing/snapshots.py``): MRR history for charts and alerts."""
from __future__ import annotations

import logging

from billing import clock
from billing.snapshots import take_snapshot
from jobs.context import in_app_context

log = logging.getLogger(__name__)


@in_app_context
def take_hourly() -> dict:
    """Store this hour's figures once per currency; a rerun within the hour keeps the first."""
    from portal.extensions import db

    clock.refresh()
    rows = take_snapshot(db.session, clock.now())
    db.session.commit()
    log.info("snapshot of %s: %s", rows[0].taken_at.isoformat() if rows else "-",
             ", ".join(f"{row.currency} MRR {row.mrr}" for row in rows))
    return {row.currency: row.mrr for row in rows}

"""The dunning job: daily (and on demand), it moves every invoice in dunning one step.

Day 0 (the failed renewal) is recorded by the ``invoice.payment_failed`` webhook
through ``billing.dunning.open_dunning``; this job does the rest (notices the day
before each retry, retries on days 3, 5 and 7, the end) and reviews paused apps.
Each invoice and each app is handled in its own transaction: one failure is
logged, counted on the run and skipped.
"""
from __future__ import annotations

import logging
from typing import Optional

from flask import current_app
from billing import clock
from billing.passes import dunning_pass
from jobs.context import in_app_context
from portal.extensions import db
from portal.payments import gateway

log = logging.getLogger(__name__)


def _pass_from_app(window: Optional[str], trigger: str) -> Optional[dict]:
    config = current_app.config
    run = dunning_pass(db.session, gateway(), window=window, trigger=trigger,
                       smtp_configured=bool(config.get("SMTP_URL")),
                       portal_base_url=config.get("PORTAL_BASE_URL", ""))
    return None if run is None else {"run": run.id, "processed": run.processed, "failed": run.failed,
                                     "status": run.status}


@in_app_context
def run_daily() -> Optional[dict]:
    """The scheduled pass: at most one successful pass per São Paulo calendar day."""
    clock.refresh()
    return _pass_from_app(clock.business_date(clock.now()).isoformat(), "schedule")


@in_app_context
def run_now(trigger: str = "on-demand") -> Optional[dict]:
    """An extra pass (superadmin, CLI): safe any time, a retry slot is never charged twice."""
    return _pass_from_app(None, trigger)

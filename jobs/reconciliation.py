"""The reconciliation job: nightly on the schedule, and on demand from the superadmin page or the CLI.

The comparison itself is ``billing.reconciliation.reconcile``; this module makes
sure only one reconciliation runs at a time and that the nightly one runs once
per night, however many workers hold the schedule.
"""
from __future__ import annotations

import logging
from typing import Optional

from billing import clock
from billing.passes import reconciliation_pass
from jobs.context import in_app_context
from portal.extensions import db
from portal.payments import gateway

log = logging.getLogger(__name__)


def _pass_from_app(trigger: str, window: Optional[str]) -> Optional[dict]:
    job, run = reconciliation_pass(db.session, gateway(), trigger=trigger, window=window)
    if run is None:
        return None
    return {"job_run": job.id, "reconciliation_run": run.id, "divergences": run.divergence_count,
            "api_calls": run.api_calls}


@in_app_context
def run_nightly() -> Optional[dict]:
    """The scheduled run: once per São Paulo night."""
    clock.refresh()
    return _pass_from_app("nightly", clock.business_date(clock.now()).isoformat())


@in_app_context
def run_now(trigger: str = "superadmin") -> Optional[dict]:
    """An on-demand run (the superadmin's "run now"); skipped while another one runs."""
    return _pass_from_app(trigger, None)

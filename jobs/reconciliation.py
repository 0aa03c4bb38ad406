"""The reconciliation job: nightly on the schedule, and on demand from the superadmin page or the CLI.

The comparison itself is ``billing.reconciliation.reconcile``; this module makes
sure only one reconciliation runs at a time and that the nightly one runs once
per night, however many workers hold the schedule.
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

from sqlalchemy.orm import Session

from billing import clock
from billing.gateway import StripeGateway
from billing.models import JobRun, ReconciliationRun
from billing.reconciliation import reconcile
from jobs.context import in_app_context
from jobs.runs import Batch, claim_run, finish_run

log = logging.getLogger(__name__)
NAME = "reconciliation"


def reconciliation_pass(session: Session, gateway: StripeGateway, *, trigger: str, window: Optional[str] = None,
                        on_progress: Optional[Callable[[int], None]] = None
                        ) -> tuple[Optional[JobRun], Optional[ReconciliationRun]]:
    """Reconcile once; (None, None) when a reconciliation is already running or the window is done."""
    clock.refresh()
    job = claim_run(session, NAME, window=window, trigger=trigger)
    if job is None:
        return None, None
    batch = Batch(session, NAME)
    try:
        run = reconcile(session, gateway, trigger=trigger, on_progress=on_progress)
    except Exception as error:
        session.rollback()
        log.exception("reconciliation failed")
        finish_run(session, job, batch, error=f"{type(error).__name__}: {error}")
        raise
    batch.processed = run.subscriptions_checked + run.invoices_checked
    job = finish_run(session, job, batch, details={"reconciliation_run": run.id,
                                                   "divergences": run.divergence_count,
                                                   "api_calls": run.api_calls})
    return job, run


def _pass_from_app(trigger: str, window: Optional[str]) -> Optional[dict]:
    from portal.extensions import db
    from portal.payments import gateway

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

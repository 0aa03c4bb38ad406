"""The batch passes the jobs run, Flask-free: the RQ entry points in ``jobs/`` and the CLI both call these.

Each pass claims its ``JobRun`` first (``billing.runs``), so a pass already running is not
started twice and a window already done is not done again; each tenant is handled in its own
transaction, and one failure is logged, counted and skipped.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from typing import Any, Callable, Optional

from sqlalchemy.orm import Session

from billing import clock
from billing.audit import Origin
from billing.dunning import (
    DunningContext,
    Step,
    advance_dunning,
    open_dunning_invoice_ids,
    paused_app_ids,
    review_paused_app,
)
from billing.gateway import StripeGateway
from billing.models import App, JobRun, KernelInvoice, ReconciliationRun
from billing.reconciliation import reconcile
from billing.runs import Batch, claim_run, finish_run
from billing.webhooks.prefetch import read_first

log = logging.getLogger(__name__)
DUNNING = "dunning"
RECONCILIATION = "reconciliation"


def _advance(session: Session, ctx: DunningContext, invoice_id: int, stripe: Any) -> Step:
    return advance_dunning(session, session.get_one(KernelInvoice, invoice_id), replace(ctx, gateway=stripe))


def _review(session: Session, ctx: DunningContext, app_id: int, stripe: Any) -> bool:
    return review_paused_app(session, session.get_one(App, app_id), replace(ctx, gateway=stripe))


def dunning_pass(session: Session, gateway: StripeGateway, *, window: Optional[str] = None,
                 trigger: str = "on-demand", smtp_configured: bool = False,
                 portal_base_url: str = "") -> Optional[JobRun]:
    """One pass over every open dunning and every paused app; None if a pass is already running."""
    clock.refresh()
    run = claim_run(session, DUNNING, window=window, trigger=trigger)
    if run is None:
        return None
    ctx = DunningContext(gateway=gateway, now=clock.now(),
                         origin=Origin(actor="job:dunning", correlation_id=f"job_run:{run.id}"),
                         smtp_configured=smtp_configured, portal_base_url=portal_base_url)
    batch = Batch(session, DUNNING)
    try:
        # Each step sees Stripe through ``read_first``: no transaction stays open while Stripe is called.
        for invoice_id in open_dunning_invoice_ids(session):
            with batch.item(f"invoice {invoice_id}"):
                batch.count(read_first(session, gateway, partial(_advance, session, ctx, invoice_id)))
        for app_id in paused_app_ids(session):
            with batch.item(f"paused app {app_id}"):
                if read_first(session, gateway, partial(_review, session, ctx, app_id)):
                    batch.count("resumed")
    except Exception as error:  # listing failed: the run failed as a whole, its window may run again
        session.rollback()
        log.exception("dunning pass failed")
        return finish_run(session, run, batch, error=f"{type(error).__name__}: {error}")
    run = finish_run(session, run, batch)
    log.info("dunning pass %s: %s processed, %s failed, %s", run.id, run.processed, run.failed, dict(batch.steps))
    return run


def reconciliation_pass(session: Session, gateway: StripeGateway, *, trigger: str, window: Optional[str] = None,
                        on_progress: Optional[Callable[[int], None]] = None
                        ) -> tuple[Optional[JobRun], Optional[ReconciliationRun]]:
    """Reconcile once; (None, None) when a reconciliation is already running or the window is done."""
    clock.refresh()
    job = claim_run(session, RECONCILIATION, window=window, trigger=trigger)
    if job is None:
        return None, None
    batch = Batch(session, RECONCILIATION)
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

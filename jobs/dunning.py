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
from sqlalchemy.orm import Session

from billing import clock
from billing.audit import Origin
from billing.dunning import (
    DunningContext,
    advance_dunning,
    open_dunning_invoice_ids,
    paused_app_ids,
    review_paused_app,
)
from billing.gateway import StripeGateway
from billing.models import App, JobRun, KernelInvoice
from jobs.context import in_app_context
from jobs.runs import Batch, claim_run, finish_run

log = logging.getLogger(__name__)
NAME = "dunning"


def dunning_pass(session: Session, gateway: StripeGateway, *, window: Optional[str] = None,
                 trigger: str = "on-demand", smtp_configured: bool = False,
                 portal_base_url: str = "") -> Optional[JobRun]:
    """One pass over every open dunning and every paused app; None if a pass is already running."""
    clock.refresh()
    run = claim_run(session, NAME, window=window, trigger=trigger)
    if run is None:
        return None
    ctx = DunningContext(gateway=gateway, now=clock.now(),
                         origin=Origin(actor="job:dunning", correlation_id=f"job_run:{run.id}"),
                         smtp_configured=smtp_configured, portal_base_url=portal_base_url)
    batch = Batch(session, NAME)
    try:
        for invoice_id in open_dunning_invoice_ids(session):
            with batch.item(f"invoice {invoice_id}"):
                batch.count(advance_dunning(session, session.get(KernelInvoice, invoice_id), ctx))
        for app_id in paused_app_ids(session):
            with batch.item(f"paused app {app_id}"):
                if review_paused_app(session, session.get(App, app_id), ctx):
                    batch.count("resumed")
    except Exception as error:  # listing failed: the run failed as a whole, its window may run again
        session.rollback()
        log.exception("dunning pass failed")
        return finish_run(session, run, batch, error=f"{type(error).__name__}: {error}")
    run = finish_run(session, run, batch)
    log.info("dunning pass %s: %s processed, %s failed, %s", run.id, run.processed, run.failed, dict(batch.steps))
    return run


def _pass_from_app(window: Optional[str], trigger: str) -> Optional[dict]:
    from portal.extensions import db
    from portal.payments import gateway

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

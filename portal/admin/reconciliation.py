"""Superadmin pages: reconciliation runs, their divergences (heal button), "run now", and the outbox.

Also ``GET /billing/reconciliation?date=YYYY-MM-DD&gateway=stripe``: the day's
figures per gateway for matching with the ERP (JSON; a superadmin session or a
superadmin's API token). It lives on a small blueprint of its own, ``summary_bp``.
"""
from __future__ import annotations

import logging
from datetime import date

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from billing.errors import GatewayError
from billing.models import (
    App,
    JobRun,
    OutboxMessage,
    OutboxStatus,
    ReconciliationDivergence,
    ReconciliationRun,
)
from billing.reconciliation import GATEWAYS, HealRefused, day_summary, heal
from billing.states import IllegalTransition
from billing.sync import UnknownPrice
from billing.webhooks.prefetch import read_first
from portal.admin.routes import bp
from portal.api_auth import api_auth_required, api_user
from portal.auth.session import superadmin_required
from portal.errors import json_error
from portal.extensions import db
from portal.pagination import paginate
from portal.payments import gateway
from portal.queue import enqueue
from portal.request_context import request_origin

log = logging.getLogger(__name__)

RUNS_SHOWN = 20
DIVERGENCES_SHOWN = 500
# 100,000 subscriptions take about two minutes; RQ's default of three would be too tight.
RECONCILIATION_TIMEOUT_SECONDS = 3600
OUTBOX_PER_PAGE = 50

summary_bp = Blueprint("billing_reconciliation", __name__)


def _running() -> bool:
    return db.session.scalar(select(JobRun.id).where(JobRun.run_key == "reconciliation:running")) is not None


@bp.get("/reconciliation")
@superadmin_required
def reconciliation():
    """Recent reconciliation runs and the divergences of the latest one."""
    runs = db.session.scalars(select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(RUNS_SHOWN)).all()
    latest = runs[0] if runs else None
    return render_template("admin/reconciliation.html", runs=runs, run=latest,
                           divergences=_divergences(latest) if latest else [], running=_running())


@bp.get("/reconciliation/runs/<int:run_id>")
@superadmin_required
def reconciliation_run(run_id: int):
    """One run: its counts and every divergence with both values."""
    run = db.session.get(ReconciliationRun, run_id) or abort(404)
    return render_template("admin/reconciliation_run.html", run=run, divergences=_divergences(run),
                           running=_running())


def _divergences(run: ReconciliationRun) -> list[ReconciliationDivergence]:
    """The run's divergences, the first ``DIVERGENCES_SHOWN`` of them (a broken night can find thousands)."""
    return list(db.session.scalars(select(ReconciliationDivergence).where(ReconciliationDivergence.run_id == run.id)
                                   .order_by(ReconciliationDivergence.id).limit(DIVERGENCES_SHOWN)))


@bp.post("/reconciliation/run")
@superadmin_required
def reconciliation_run_now():
    """Queue a reconciliation now (skipped by the job itself if one is already running)."""
    if _running():
        flash(_("A reconciliation is already running."), "info")
        return redirect(url_for("admin.reconciliation"))
    # End this request's transaction first: with RQ_SYNC the job runs here, and SQLite has one writer.
    db.session.commit()
    try:
        enqueue("jobs.reconciliation.run_now", trigger="superadmin", timeout=RECONCILIATION_TIMEOUT_SECONDS)
    except RedisError:
        log.exception("could not queue a reconciliation")
        flash(_("The job queue is unavailable. Please try again later."), "error")
        return redirect(url_for("admin.reconciliation"))
    flash(_("Reconciliation started. This page updates itself until it finishes."), "success")
    return redirect(url_for("admin.reconciliation"))


@bp.post("/reconciliation/divergences/<int:divergence_id>/heal")
@superadmin_required
def reconciliation_heal(divergence_id: int):
    """Copy Stripe's state onto our row for this divergence (audited)."""
    divergence = db.session.get(ReconciliationDivergence, divergence_id) or abort(404)
    back = url_for("admin.reconciliation_run", run_id=divergence.run_id)
    try:
        origin = request_origin()
        # Stripe is asked with no transaction open: the heal runs again, from the divergence, with each answer.
        healed = read_first(db.session, gateway(), lambda stripe: heal(
            db.session, stripe, db.session.get(ReconciliationDivergence, divergence_id), origin=origin))
        db.session.commit()
    except HealRefused as refused:
        db.session.rollback()
        flash(_("This divergence cannot be healed automatically: %(reason)s", reason=str(refused)), "error")
        return redirect(back)
    except (IllegalTransition, UnknownPrice) as refused:
        db.session.rollback()
        flash(_("Stripe's state cannot be applied here: %(reason)s", reason=str(refused)), "error")
        return redirect(back)
    except IntegrityError:
        db.session.rollback()
        log.exception("heal of divergence %s conflicts with another row", divergence_id)
        flash(_("Stripe's state conflicts with another of our rows (a second live subscription of the app?); "
                "nothing was changed."), "error")
        return redirect(back)
    except GatewayError:
        db.session.rollback()
        log.exception("heal of divergence %s could not reach Stripe", divergence_id)
        flash(_("Stripe could not be reached; nothing was changed."), "error")
        return redirect(back)
    flash(_("Healed from Stripe: %(count)s divergence(s) of %(object)s.", count=healed, object=divergence.stripe_id),
          "success")
    return redirect(back)


@bp.get("/outbox")
@superadmin_required
def outbox():
    """Every notice written to app owners, newest first, with its delivery status."""
    status = request.args.get("status", "")
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc())
    if status in {s.value for s in OutboxStatus}:
        query = query.where(OutboxMessage.status == status)
    else:
        status = ""
    pagination = paginate(query, request.args.get("page", 1, type=int), OUTBOX_PER_PAGE)
    apps = {app.id: app for app in db.session.scalars(
        select(App).where(App.id.in_({m.app_id for m in pagination.items if m.app_id})))}
    return render_template("admin/outbox.html", pagination=pagination, apps=apps, status=status,
                           statuses=[s.value for s in OutboxStatus])


@summary_bp.get("/billing/reconciliation")
@api_auth_required
def day_figures():
    """The day's paid, failed and refunded sums and divergences for one gateway (JSON, for the ERP)."""
    if not api_user().is_superadmin:
        # Like every superadmin page: to anyone else it does not exist.
        return json_error(404, "Not found")
    name = request.args.get("gateway", "stripe")
    if name not in GATEWAYS:
        return json_error(404, f"Unknown gateway {name!r}")
    raw = request.args.get("date", "")
    try:
        day = date.fromisoformat(raw)
        if len(raw) != 10:
            raise ValueError(raw)
    except ValueError:
        return json_error(400, "date must be given as YYYY-MM-DD")
    return jsonify(day_summary(db.session, day, name))

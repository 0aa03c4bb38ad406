"""Superadmin Operations: pause and resume billing (one app first, then all), incident notices, the release ledger."""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from billing.control import NotPaused, open_pause, pause_billing, resume_billing, send_incident_notice
from billing.models import App, Release, ReleaseKind
from portal.admin.routes import bp
from portal.auth.session import superadmin_required
from portal.control import current_gateway_mode, pause_state, request_actor, requeue
from portal.extensions import db
from portal.pagination import paginate
from portal.request_context import attempt_from, new_attempt

LEDGER_ON_PAGE = 10
PER_PAGE = 50


def _back():
    return redirect(url_for("admin.operations"))


def _app_ids() -> list[int]:
    return [int(value) for value in request.form.getlist("app_id") if value.isdigit()]


@bp.get("/operations")
@superadmin_required
def operations():
    """Billing's state (running or paused), the pause / resume / notice controls, and the latest ledger entries."""
    apps = db.session.scalars(select(App).order_by(App.name)).all()
    ledger = db.session.scalars(select(Release).order_by(Release.id.desc()).limit(LEDGER_ON_PAGE)).all()
    return render_template("admin/operations.html", state=pause_state(), apps=apps, ledger=ledger,
                           gateway_mode=current_gateway_mode(), attempt=new_attempt())


@bp.post("/operations/pause")
@superadmin_required
def pause():
    """Pause billing for every app, with a reason."""
    try:
        _pause, opened = pause_billing(db.session, reason=request.form.get("reason", ""), actor=request_actor(),
                                       gateway_mode=current_gateway_mode())
    except ValueError:
        db.session.rollback()
        flash(_("Say why billing is paused (at most 2,000 characters)."), "error")
        return _back()
    db.session.commit()
    if opened:
        flash(_("Billing is paused: events are recorded but not applied, jobs charge nothing and owners cannot "
                "change plans."), "success")
    else:
        flash(_("Billing was already paused."), "info")
    return _back()


@bp.post("/operations/resume")
@superadmin_required
def resume():
    """Resume billing for the chosen apps first, or for every app; the held events are applied, oldest first."""
    everyone = request.form.get("scope") == "all"
    app_ids = None if everyone else _app_ids()
    if app_ids == []:
        flash(_("Choose the apps to resume first, or resume every app."), "error")
        return _back()
    try:
        held = resume_billing(db.session, actor=request_actor(), gateway_mode=current_gateway_mode(),
                              app_ids=app_ids)
    except NotPaused:
        db.session.rollback()
        flash(_("Billing is not paused."), "info")
        return _back()
    except ValueError:
        db.session.rollback()
        flash(_("One of the chosen apps does not exist."), "error")
        return _back()
    db.session.commit()
    queued = requeue(held)
    if everyone:
        flash(_("Billing resumed for every app; %(count)d held events queued, oldest first.", count=queued),
              "success")
    else:
        flash(_("Billing resumed for %(apps)d app(s) first; %(count)d held events queued, oldest first.",
                apps=len(app_ids), count=queued), "success")
    return _back()


@bp.post("/operations/notice")
@superadmin_required
def incident_notice():
    """Send an incident notice to the owners of the chosen apps (or of every app), through the outbox."""
    attempt = attempt_from(request.form.get("attempt"))
    if request.form.get("scope") == "all":
        app_ids = list(db.session.scalars(select(App.id)))
    else:
        app_ids = _app_ids()
    try:
        _entry, written = send_incident_notice(
            db.session, app_ids=app_ids, subject=request.form.get("subject", ""), body=request.form.get("body", ""),
            actor=request_actor(), gateway_mode=current_gateway_mode(),
            smtp_configured=bool(current_app.config.get("SMTP_URL")), attempt=attempt)
    except ValueError:
        db.session.rollback()
        flash(_("Choose at least one app and write a subject (at most 200 characters) and a message."), "error")
        return _back()
    db.session.commit()
    flash(_("Incident notice sent: %(count)d message(s) in the outbox.", count=written), "success")
    return _back()


@bp.get("/releases")
@superadmin_required
def release_ledger():
    """The release ledger: deploys, gateway mode changes, pauses, resumes and incident notices, newest first."""
    kind = request.args.get("kind") or None
    if kind not in (None, *(k.value for k in ReleaseKind)):
        kind = None
    query = select(Release).order_by(Release.id.desc())
    if kind:
        query = query.where(Release.kind == ReleaseKind(kind))
    pagination = paginate(query, request.args.get("page", type=int), PER_PAGE)
    return render_template("admin/releases.html", pagination=pagination, kind=kind,
                           kinds=[k.value for k in ReleaseKind], state=open_pause(db.session))

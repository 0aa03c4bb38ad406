"""Superadmin views: tenants (plan, status, MRR, open alerts), a tenant's detail, alerts and the audit log."""
from __future__ import annotations

from typing import Any, Optional

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import aliased

from billing import alert_rules, audit, clock
from billing.models import (
    Alert,
    App,
    AppSubscription,
    AuditLog,
    KernelInvoice,
    KernelPlan,
)
from billing.states import SubscriptionStatus
from billing.subscriptions import MRR_STATUSES, monthly_amount_sql
from portal.auth.session import superadmin_required
from portal.extensions import db
from portal.pagination import paginate
from portal.request_context import request_origin
from portal.urls import is_id

bp = Blueprint("admin", __name__, url_prefix="/admin")

PER_PAGE = 50
NEVER_SUBSCRIBED = "none"


def _open_alerts_of_app():
    return (select(func.count(Alert.id)).where(Alert.app_id == App.id, Alert.resolved_at.is_(None))
            .correlate(App).scalar_subquery())


def tenants_query(status: Optional[str], plan_code: Optional[str]) -> tuple[Select, Select]:
    """Each app with its newest subscription, its plan and its open alert count; and the filtered MRR total.

    The plan of an app whose newest subscription has ended is Free. MRR counts
    paying subscriptions (active, past due) at their monthly price, in minor units.
    """
    newest = (select(AppSubscription.app_id, func.max(AppSubscription.id).label("subscription_id"))
              .group_by(AppSubscription.app_id).subquery())
    sub = aliased(AppSubscription)
    plan = aliased(KernelPlan)
    live = and_(sub.id.is_not(None), sub.is_live)
    mrr = case((and_(live, sub.status.in_(MRR_STATUSES)), monthly_amount_sql(plan)), else_=0)

    def joined(query: Select) -> Select:
        query = (query.select_from(App).outerjoin(newest, newest.c.app_id == App.id)
                 .outerjoin(sub, sub.id == newest.c.subscription_id).outerjoin(plan, plan.id == sub.plan_id))
        if status == NEVER_SUBSCRIBED:
            query = query.where(sub.id.is_(None))
        elif status:
            query = query.where(sub.status == SubscriptionStatus(status))
        if plan_code == "free":
            query = query.where(or_(sub.id.is_(None), ~sub.is_live))
        elif plan_code:
            query = query.where(live, plan.code == plan_code)
        return query

    rows = joined(select(App, sub, _open_alerts_of_app().label("open_alerts"), mrr.label("mrr"))).order_by(App.name)
    total = joined(select(func.coalesce(func.sum(mrr), 0)))
    return rows, total


@bp.get("/")
@superadmin_required
def tenants():
    """All tenants with plan, status, MRR contribution and open alerts; filter by status and plan."""
    status = request.args.get("status") or None
    if status not in (None, NEVER_SUBSCRIBED, *(s.value for s in SubscriptionStatus)):
        status = None
    plans = list(db.session.scalars(select(KernelPlan).order_by(KernelPlan.rank)))
    plan_code = request.args.get("plan") or None
    if plan_code not in (None, *(p.code for p in plans)):
        plan_code = None
    rows, total = tenants_query(status, plan_code)
    pagination = paginate(rows, request.args.get("page", type=int), PER_PAGE, rows=True)
    return render_template("admin/tenants.html", pagination=pagination, mrr_total=db.session.scalar(total) or 0,
                           plans=plans, statuses=[s.value for s in SubscriptionStatus], status=status,
                           plan_code=plan_code, currency=plans[-1].currency if plans else "BRL",
                           open_alerts=db.session.scalar(select(func.count(Alert.id))
                                                         .where(Alert.resolved_at.is_(None))))


@bp.get("/tenants/<int:app_id>")
@superadmin_required
def tenant(app_id: int):
    """One tenant: owners, subscriptions, latest invoices, open alerts and audit trail."""
    app = db.get_or_404(App, app_id)
    invoices = db.session.scalars(select(KernelInvoice).where(KernelInvoice.app_id == app.id)
                                  .order_by(KernelInvoice.created_at.desc(), KernelInvoice.id.desc()).limit(10)).all()
    invoice_count = db.session.scalar(select(func.count(KernelInvoice.id)).where(KernelInvoice.app_id == app.id))
    alerts = db.session.scalars(select(Alert).where(Alert.app_id == app.id, Alert.resolved_at.is_(None))
                                .order_by(Alert.created_at.desc())).all()
    trail = db.session.scalars(select(AuditLog).where(AuditLog.app_id == app.id)
                               .order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(30)).all()
    return render_template("admin/tenant.html", app=app, invoices=invoices, invoice_count=invoice_count,
                           alerts=alerts, trail=trail)


# ---------------------------------------------------------------- alerts


@bp.get("/alerts")
@superadmin_required
def alerts():
    """Alerts, open ones first by default; filter by state and kind."""
    state = request.args.get("state", "open")
    kind = request.args.get("kind") or None
    query = select(Alert).order_by(Alert.created_at.desc(), Alert.id.desc())
    if state == "open":
        query = query.where(Alert.resolved_at.is_(None))
    elif state == "resolved":
        query = query.where(Alert.resolved_at.is_not(None))
    else:
        state = "all"
    if kind:
        query = query.where(Alert.kind == kind)
    kinds = db.session.scalars(select(Alert.kind).distinct().order_by(Alert.kind)).all()
    pagination = paginate(query, request.args.get("page", type=int), PER_PAGE)
    return render_template("admin/alerts.html", pagination=pagination, state=state, kind=kind, kinds=kinds)


@bp.post("/alerts/<int:alert_id>/resolve")
@superadmin_required
def resolve_alert(alert_id: int):
    """Mark an alert as handled (kept, with who resolved it and when)."""
    alert = db.get_or_404(Alert, alert_id)
    if alert_rules.is_rule_alert(alert) and alert.resolved_at is None:
        flash(_("This alert resolves by itself when its condition clears; acknowledge it instead."), "error")
    elif alert.resolved_at is None:
        alert.resolved_at = clock.now()
        alert.resolved_by_id = current_user.id
        audit.record(db.session, action="alert.resolved", object_type="alert", object_id=alert.id, app_id=alert.app_id,
                     before={"resolved": False, "kind": alert.kind}, after={"resolved": True, "kind": alert.kind},
                     origin=request_origin())
        db.session.commit()
        flash(_("Alert resolved."), "success")
    back = request.form.get("next", "")
    return redirect(back if back.startswith("/admin") else url_for("admin.alerts"))


@bp.post("/alerts/<int:alert_id>/acknowledge")
@superadmin_required
def acknowledge_alert(alert_id: int):
    """Say that a superadmin has seen an alert (a rule's alert stays open until its condition clears)."""
    alert = db.get_or_404(Alert, alert_id)
    if alert.resolved_at is None and alert_rules.acknowledge(alert, user_id=current_user.id, now=clock.now()):
        audit.record(db.session, action="alert.acknowledged", object_type="alert", object_id=alert.id,
                     app_id=alert.app_id, before={"acknowledged": False, "kind": alert.kind},
                     after={"acknowledged": True, "kind": alert.kind}, origin=request_origin())
        db.session.commit()
        flash(_("Alert acknowledged."), "success")
    back = request.form.get("next", "")
    return redirect(back if back.startswith("/admin") else url_for("admin.alerts"))


# ---------------------------------------------------------------- audit log


@bp.get("/audit")
@superadmin_required
def audit_log():
    """Every recorded change, newest first; filter by app, action and actor."""
    query = select(AuditLog).order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
    app_id = request.args.get("app_id", type=int)
    action = (request.args.get("action") or "").strip()[:100]  # as the field allows
    actor = (request.args.get("actor") or "").strip()
    if app_id and not is_id(app_id):
        abort(404)
    if app_id:
        query = query.where(AuditLog.app_id == app_id)
    if action:
        query = query.where(AuditLog.action.startswith(action, autoescape=True))
    if actor:
        query = query.where(AuditLog.actor == actor)
    apps = db.session.scalars(select(App).order_by(App.name)).all()
    pagination = paginate(query, request.args.get("page", type=int), PER_PAGE)
    return render_template("admin/audit.html", pagination=pagination, apps=apps, app_id=app_id, action=action,
                           actor=actor)


@bp.app_template_global()
def audit_changes(entry: AuditLog) -> list[tuple[str, Any, Any]]:
    """The fields an audit entry changed, as (name, before, after); all of ``after`` for a creation."""
    before, after = entry.before or {}, entry.after or {}
    names = list(dict.fromkeys([*before, *after]))
    return [(name, before.get(name), after.get(name)) for name in names if before.get(name) != after.get(name)]

"""Every subscription and every invoice across tenants, page by page and filtered, and the same lists as CSV."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Optional

from flask import render_template, request
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import joinedload

from billing.clock import business_day_start
from billing.models import App, AppSubscription, KernelInvoice, KernelPlan
from billing.money import Money
from billing.states import SubscriptionStatus
from portal.admin.csv_export import csv_response
from portal.admin.routes import bp
from portal.auth.session import superadmin_required
from portal.extensions import db
from portal.pagination import paginate

PER_PAGE = 50
INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
MAX_SEARCH = 100


def _search(query: Select) -> tuple[Select, str]:
    """Narrow to apps whose name or slug contains ``q``."""
    q = (request.args.get("q") or "").strip()[:MAX_SEARCH]
    if q:
        query = query.where(or_(App.name.icontains(q, autoescape=True), App.slug.icontains(q, autoescape=True)))
    return query, q


def _day(name: str) -> Optional[date]:
    try:
        return date.fromisoformat(request.args.get(name) or "")
    except ValueError:
        return None


# ---------------------------------------------------------------- subscriptions


def subscriptions_query() -> tuple[Select, dict]:
    """The filtered subscriptions, newest first, and the filters as they were understood."""
    query = (select(AppSubscription).join(App, App.id == AppSubscription.app_id)
             .join(KernelPlan, KernelPlan.id == AppSubscription.plan_id)
             .options(joinedload(AppSubscription.app), joinedload(AppSubscription.plan))
             .order_by(AppSubscription.created_at.desc(), AppSubscription.id.desc()))
    status = request.args.get("status") or None
    if status not in (None, *(s.value for s in SubscriptionStatus)):
        status = None
    if status:
        query = query.where(AppSubscription.status == SubscriptionStatus(status))
    plan = request.args.get("plan") or None
    if plan:
        query = query.where(KernelPlan.code == plan)
    query, q = _search(query)
    return query, {"status": status or "", "plan": plan or "", "q": q}


@bp.get("/subscriptions")
@superadmin_required
def subscriptions():
    """Every tenant's subscriptions, newest first; filter by status, plan and app."""
    query, filters = subscriptions_query()
    pagination = paginate(query, request.args.get("page", type=int), PER_PAGE)
    plans = db.session.scalars(select(KernelPlan).order_by(KernelPlan.rank)).all()
    return render_template("admin/subscriptions.html", pagination=pagination, filters=filters, plans=plans,
                           statuses=[s.value for s in SubscriptionStatus])


SUBSCRIPTION_COLUMNS = ("app_id", "app", "stripe_subscription_id", "plan", "status", "monthly_amount_minor",
                        "monthly_amount", "currency", "current_period_start", "current_period_end",
                        "cancel_at_period_end", "canceled_at", "created_at")


def _iso(value: Optional[datetime]) -> str:
    return value.isoformat() if value else ""


@bp.get("/subscriptions.csv")
@superadmin_required
def subscriptions_csv():
    """The filtered subscriptions as CSV (every page), streamed."""
    query, _filters = subscriptions_query()

    def rows():
        for sub in db.session.scalars(query.execution_options(yield_per=500)):
            price = sub.plan.price
            yield (sub.app_id, sub.app.name, sub.stripe_subscription_id, sub.plan.code, sub.status.value,
                   price.amount, price.to_decimal_string(), price.currency, _iso(sub.current_period_start),
                   _iso(sub.current_period_end), sub.cancel_at_period_end, _iso(sub.canceled_at),
                   _iso(sub.created_at))

    return csv_response("kernel-subscriptions", SUBSCRIPTION_COLUMNS, rows())


# ---------------------------------------------------------------- invoices


def invoices_query() -> tuple[Select, dict]:
    """The filtered invoices, newest first; ``from``/``to`` are São Paulo calendar days, both included."""
    query = (select(KernelInvoice).join(App, App.id == KernelInvoice.app_id)
             .options(joinedload(KernelInvoice.app))
             .order_by(KernelInvoice.created_at.desc(), KernelInvoice.id.desc()))
    status = request.args.get("status") or None
    if status not in (None, *INVOICE_STATUSES):
        status = None
    if status:
        query = query.where(KernelInvoice.status == status)
    currency = (request.args.get("currency") or "").strip().upper()[:3] or None
    if currency:
        query = query.where(KernelInvoice.currency == currency)
    start, end = _day("from"), _day("to")
    if start:
        query = query.where(KernelInvoice.created_at >= business_day_start(start))
    if end:
        query = query.where(KernelInvoice.created_at < business_day_start(end + timedelta(days=1)))
    query, q = _search(query)
    return query, {"status": status or "", "currency": currency or "", "q": q,
                   "from": start.isoformat() if start else "", "to": end.isoformat() if end else ""}


@bp.get("/invoices")
@superadmin_required
def invoices():
    """Every tenant's invoices, newest first; filter by status, currency, app and creation day."""
    query, filters = invoices_query()
    pagination = paginate(query, request.args.get("page", type=int), PER_PAGE)
    return render_template("admin/invoices.html", pagination=pagination, filters=filters, statuses=INVOICE_STATUSES)


INVOICE_COLUMNS = ("app_id", "app", "stripe_invoice_id", "number", "status", "billing_reason", "amount_due_minor",
                   "amount_due", "amount_paid_minor", "amount_paid", "currency", "period_start", "period_end",
                   "created_at", "paid_at")


@bp.get("/invoices.csv")
@superadmin_required
def invoices_csv():
    """The filtered invoices as CSV (every page), streamed."""
    query, _filters = invoices_query()

    def rows():
        for invoice in db.session.scalars(query.execution_options(yield_per=500)):
            due, paid = Money(invoice.amount_due, invoice.currency), Money(invoice.amount_paid, invoice.currency)
            yield (invoice.app_id, invoice.app.name, invoice.stripe_invoice_id, invoice.number or "", invoice.status,
                   invoice.billing_reason or "", due.amount, due.to_decimal_string(), paid.amount,
                   paid.to_decimal_string(), invoice.currency, _iso(invoice.period_start), _iso(invoice.period_end),
                   _iso(invoice.created_at), _iso(invoice.paid_at))

    return csv_response("kernel-invoices", INVOICE_COLUMNS, rows())

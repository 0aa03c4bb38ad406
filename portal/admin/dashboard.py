"""Superadmin money at a glance: MRR, churn, failed-payment rate and revenue by plan now, charts over time
(from the hourly snapshots, ``billing/snapshots.py``), and the daily figures as CSV."""
from __future__ import annotations

from datetime import timedelta

from flask import render_template, request
from flask_babel import format_percent
from flask_babel import gettext as _
from sqlalchemy import func, select

from billing import clock
from billing.clock import business_date
from billing.models import AppSubscription, KernelPlan, MrrSnapshot
from billing.money import Money
from billing.snapshots import current_figures, daily_series
from billing.subscriptions import MRR_STATUSES, monthly_amount_sql
from portal.admin.charts import bar_chart, line_chart
from portal.admin.csv_export import csv_response
from portal.admin.routes import bp
from portal.auth.session import superadmin_required
from portal.extensions import db
from portal.i18n import money

RANGES = {"30": 30, "90": 90, "365": 365}
DEFAULT_RANGE = "90"


def revenue_by_plan(session) -> list[tuple[KernelPlan, int, int]]:
    """Each paid plan with its paying subscriptions and their MRR (minor units), highest MRR first."""
    rows = session.execute(
        select(KernelPlan, func.count(AppSubscription.id), func.coalesce(func.sum(monthly_amount_sql(KernelPlan)), 0))
        .join(AppSubscription, AppSubscription.plan_id == KernelPlan.id)
        .where(AppSubscription.status.in_(MRR_STATUSES))
        .group_by(KernelPlan.id).order_by(func.sum(monthly_amount_sql(KernelPlan)).desc(), KernelPlan.rank))
    return [(plan, count, total) for plan, count, total in rows]


def _percent(value) -> str:
    return "—" if value is None else format_percent(value, "#,##0.0%")


def _days() -> int:
    return RANGES.get(request.args.get("days", DEFAULT_RANGE), RANGES[DEFAULT_RANGE])


@bp.get("/dashboard")
@superadmin_required
def dashboard():
    """MRR, churn, failed-payment rate and revenue by plan, with charts over the chosen range."""
    clock.refresh()
    now = clock.now()
    days = _days()
    since = business_date(now) - timedelta(days=days)
    figures = current_figures(db.session, now)
    charts = {}
    for currency in figures:
        series = daily_series(db.session, currency, since)
        labels = [row.day.isoformat() for row in series]
        charts[currency] = {
            "mrr": line_chart(_("MRR (%(currency)s)", currency=currency),
                              [(label, row.mrr) for label, row in zip(labels, series)],
                              lambda value, c=currency: money(int(value), c)),
            "churn": line_chart(_("Churn, 30 days"), [(label, row.churned_count / row.churn_base if row.churn_base
                                                       else 0.0) for label, row in zip(labels, series)], _percent),
            "failures": line_chart(_("Failed payments, 24 hours"), [
                (label, row.payments_failed / (row.payments_failed + row.payments_succeeded)
                 if row.payments_failed + row.payments_succeeded else 0.0) for label, row in zip(labels, series)],
                _percent),
        }
    plans = revenue_by_plan(db.session)
    plan_chart = bar_chart(_("MRR by plan"), [(plan.name, total) for plan, _count, total in plans],
                           lambda value: money(int(value), plans[0][0].currency) if plans else "")
    return render_template("admin/dashboard.html", figures=figures, charts=charts, plans=plans,
                           plan_chart=plan_chart, days=days, ranges=RANGES, percent=_percent)


SNAPSHOT_COLUMNS = ("day", "taken_at", "currency", "mrr_minor", "mrr", "active_subscriptions", "churn_base",
                    "churned", "churn_rate", "payments_succeeded", "payments_failed", "failed_payment_rate")


@bp.get("/dashboard.csv")
@superadmin_required
def dashboard_csv():
    """The daily figures (the last snapshot of each day, every currency) over the chosen range, as CSV."""
    clock.refresh()
    since = business_date(clock.now()) - timedelta(days=_days())
    last = (select(func.max(MrrSnapshot.taken_at)).where(MrrSnapshot.day >= since)
            .group_by(MrrSnapshot.day, MrrSnapshot.currency))
    query = (select(MrrSnapshot).where(MrrSnapshot.day >= since, MrrSnapshot.taken_at.in_(last))
             .order_by(MrrSnapshot.day, MrrSnapshot.currency))

    def rows():
        for row in db.session.scalars(query.execution_options(yield_per=500)):
            attempts = row.payments_succeeded + row.payments_failed
            yield (row.day.isoformat(), row.taken_at.isoformat(), row.currency, row.mrr,
                   Money(row.mrr, row.currency).to_decimal_string(), row.active_count, row.churn_base,
                   row.churned_count, f"{row.churned_count / row.churn_base:.4f}" if row.churn_base else "",
                   row.payments_succeeded, row.payments_failed,
                   f"{row.payments_failed / attempts:.4f}" if attempts else "")

    return csv_response("kernel-billing-figures", SNAPSHOT_COLUMNS, rows())

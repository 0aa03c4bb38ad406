"""Money at a glance for superadmins: the dashboard (figures, SVG charts from the snapshots, revenue by plan), the
lists of every subscription and invoice across tenants, and their CSV exports."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from billing.clock import business_date
from billing.models import AppSubscription, KernelInvoice, KernelPlan, MrrSnapshot
from billing.states import SubscriptionStatus
from portal.extensions import db
from tests.helpers.data import make_app

NOW = datetime.now(timezone.utc)


@pytest.fixture
def books(app, tenant):
    """Acme on Pro, "=Evil" on Enterprise (a name a spreadsheet would run), Gamma canceled; invoices; two days of
    snapshots."""
    evil = make_app(app, "=HYPERLINK(1)", slug="evil")
    gamma = make_app(app, "Gamma", slug="gamma")
    with app.app_context():
        plans = {plan.code: plan for plan in db.session.scalars(select(KernelPlan))}
        for index, (app_id, code, status) in enumerate(((tenant.id, "pro", SubscriptionStatus.ACTIVE),
                                                        (evil.id, "enterprise", SubscriptionStatus.ACTIVE),
                                                        (gamma.id, "pro", SubscriptionStatus.CANCELED))):
            db.session.add(AppSubscription(app_id=app_id, plan_id=plans[code].id, status=status,
                                           stripe_customer_id=f"cus_{index}", stripe_subscription_id=f"sub_{index}",
                                           current_period_start=NOW - timedelta(days=5),
                                           current_period_end=NOW + timedelta(days=25)))
        for index, (app_id, status, amount) in enumerate(((tenant.id, "paid", 9900), (evil.id, "open", 49900),
                                                          (tenant.id, "paid", 9900))):
            db.session.add(KernelInvoice(app_id=app_id, stripe_invoice_id=f"in_{index}", number=f"N-{index}",
                                         status=status, amount_due=amount, amount_paid=amount if status == "paid"
                                         else 0, currency="BRL", created_at=NOW - timedelta(days=40 * index)))
        for days_ago, mrr in ((2, 49900), (1, 59800)):
            taken = (NOW - timedelta(days=days_ago)).replace(minute=0, second=0, microsecond=0)
            db.session.add(MrrSnapshot(taken_at=taken, day=business_date(taken), currency="BRL", mrr=mrr,
                                       active_count=2, churn_base=4, churned_count=1, payments_succeeded=9,
                                       payments_failed=1))
        db.session.commit()
    return tenant, evil, gamma


def _csv(response) -> list[dict]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_the_dashboard_shows_mrr_churn_failures_revenue_by_plan_and_charts(superadmin_client, books):
    page = superadmin_client.get("/admin/dashboard").get_data(as_text=True)
    assert "R$598.00" in page  # MRR now: Pro 99 + Enterprise 499, the canceled one left out
    assert '<svg class="chart"' in page and "<polyline" in page  # drawn here, no JS
    assert page.count('data-plan="') == 2 and "R$499.00" in page
    figures = _csv(superadmin_client.get("/admin/dashboard.csv?days=30"))
    assert [(row["currency"], row["mrr_minor"], row["mrr"], row["churn_rate"], row["failed_payment_rate"])
            for row in figures] == [("BRL", "49900", "499.00", "0.2500", "0.1000"),
                                    ("BRL", "59800", "598.00", "0.2500", "0.1000")]


def test_subscriptions_list_filters_across_tenants_and_exports_csv(superadmin_client, books):
    acme, evil, gamma = books
    every = superadmin_client.get("/admin/subscriptions").get_data(as_text=True)
    assert all(f'data-subscription="sub_{index}"' in every for index in range(3))
    canceled = superadmin_client.get("/admin/subscriptions?status=canceled").get_data(as_text=True)
    assert 'data-subscription="sub_2"' in canceled and 'data-subscription="sub_0"' not in canceled
    pro = superadmin_client.get("/admin/subscriptions?plan=pro&q=acme").get_data(as_text=True)
    assert 'data-subscription="sub_0"' in pro and 'data-subscription="sub_2"' not in pro
    rows = _csv(superadmin_client.get("/admin/subscriptions.csv?plan=enterprise"))
    assert [(r["app"], r["plan"], r["monthly_amount_minor"], r["monthly_amount"], r["currency"]) for r in rows] == [
        ("'=HYPERLINK(1)", "enterprise", "49900", "499.00", "BRL")]  # a formula is written as text
    assert superadmin_client.get("/admin/subscriptions?status=bogus&page=99").status_code == 200


def test_invoices_list_filters_by_status_day_and_currency_and_exports_every_page(app, superadmin_client, books):
    open_only = superadmin_client.get("/admin/invoices?status=open").get_data(as_text=True)
    assert 'data-invoice="in_1"' in open_only and 'data-invoice="in_0"' not in open_only
    recent = (NOW - timedelta(days=10)).date().isoformat()
    assert 'data-invoice="in_2"' not in superadmin_client.get(f"/admin/invoices?from={recent}").get_data(True)
    assert 'data-invoice="in_0"' not in superadmin_client.get("/admin/invoices?currency=usd").get_data(True)
    rows = _csv(superadmin_client.get("/admin/invoices.csv"))
    assert sorted((r["stripe_invoice_id"], r["amount_due_minor"], r["amount_paid"]) for r in rows) == [
        ("in_0", "9900", "99.00"), ("in_1", "49900", "0.00"), ("in_2", "9900", "99.00")]


def test_the_lists_paginate(app, superadmin_client, tenant):
    with app.app_context():
        for index in range(55):
            db.session.add(KernelInvoice(app_id=tenant.id, stripe_invoice_id=f"in_page_{index}", status="paid",
                                         amount_due=100, amount_paid=100, currency="BRL",
                                         created_at=NOW - timedelta(minutes=index)))
        db.session.commit()
    first = superadmin_client.get("/admin/invoices").get_data(as_text=True)
    second = superadmin_client.get("/admin/invoices?page=2").get_data(as_text=True)
    assert first.count("data-invoice=") == 50 and second.count("data-invoice=") == 5
    assert "Page 1 of 2" in first and 'data-invoice="in_page_0"' in first and 'data-invoice="in_page_54"' in second


@pytest.mark.parametrize("path", ["/admin/dashboard", "/admin/dashboard.csv", "/admin/subscriptions",
                                  "/admin/subscriptions.csv", "/admin/invoices", "/admin/invoices.csv"])
def test_owners_get_a_404(owner_client, path):
    assert owner_client.get(path).status_code == 404

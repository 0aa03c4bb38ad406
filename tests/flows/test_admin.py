"""Superadmin pages: every tenant with plan, status, MRR and open alerts; tenant detail; alerts; audit log."""
import re

import pytest
from sqlalchemy import select

from billing import audit
from billing.models import Alert, AlertSeverity, AppSubscription, KernelPlan
from billing.states import SubscriptionStatus
from billing.subscriptions import monthly_amount
from portal.admin.routes import tenants_query
from portal.extensions import db
from tests.helpers.clients import signed_in_client, subscribe
from tests.helpers.data import audit_actions, short_session


@pytest.fixture
def admin_http(billing_app, superadmin):
    return signed_in_client(billing_app, superadmin)


@pytest.fixture
def acme_on_pro(billing_app, owner_http, tenant, other_tenant):
    """Acme pays for Pro and has one open alert; Bravo never subscribed."""
    subscribe(owner_http, tenant.id, "pro")
    with short_session(billing_app) as session:
        audit.raise_alert(session, kind="payment_failed", message="Renewal payment failed", app_id=tenant.id,
                          severity=AlertSeverity.CRITICAL, dedupe_key="test:acme")
    return tenant


def rows(page: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-app="([^"]+)">(.*?)</tr>', page, re.S))


def test_the_tenants_list_shows_plan_status_mrr_and_alerts(billing_app, admin_http, acme_on_pro):
    page = admin_http.get("/admin/").get_data(as_text=True)
    listed = rows(page)
    assert set(listed) == {"acme", "bravo"}
    assert '<td class="plan">Pro</td>' in listed["acme"] and "badge-active" in listed["acme"]
    assert "R$99.00" in listed["acme"] and re.search(r'class="badge badge-warning"[^>]*>1<', listed["acme"])
    assert '<td class="plan">Free</td>' in listed["bravo"] and "R$0.00" in listed["bravo"]
    assert re.search(r'id="mrr-total">R\$99\.00<', page)


FILTERS = [
    ("status=active", {"acme"}),
    ("status=none", {"bravo"}),
    ("status=canceled", set()),
    ("plan=pro", {"acme"}),
    ("plan=free", {"bravo"}),
    ("plan=enterprise", set()),
    ("status=active&plan=free", set()),
    ("status=bogus", {"acme", "bravo"}),
]


def test_tenants_can_be_filtered_by_status_and_plan(billing_app, admin_http, acme_on_pro):
    for query, expected in FILTERS:  # one set-up for all: each subscription costs a Checkout in the sandbox
        page = admin_http.get(f"/admin/?{query}").get_data(as_text=True)
        assert set(rows(page)) == expected, query


def test_a_canceled_subscription_is_free_and_adds_no_mrr(billing_app, admin_http, acme_on_pro):
    with short_session(billing_app) as session:
        session.scalar(select(AppSubscription)).move_to(SubscriptionStatus.CANCELED)
    page = admin_http.get("/admin/?plan=free").get_data(as_text=True)
    assert set(rows(page)) == {"acme", "bravo"}
    assert re.search(r'id="mrr-total">R\$0\.00<', page)
    assert set(rows(admin_http.get("/admin/?status=canceled").get_data(as_text=True))) == {"acme"}


def test_mrr_counts_paying_subscriptions_per_month(billing_app, acme_on_pro):
    """The rule that ships: the tenants list's SQL, status by status, and a yearly price spread over 12 months."""
    yearly = KernelPlan(code="pro_year", name="Pro yearly", amount=99000, currency="BRL", interval="year")
    assert monthly_amount(yearly) == 8250
    with billing_app.app_context():
        row = db.session.scalar(select(AppSubscription))
        for status, expected in [("active", 9900), ("past_due", 9900), ("trialing", 0), ("canceled", 0),
                                 ("incomplete", 0), ("unpaid", 0)]:
            row.status = SubscriptionStatus(status)  # set directly: the rule is under test, not the transitions
            db.session.flush()
            assert db.session.scalar(tenants_query(None, None)[1]) == expected, status
        row.status, row.plan.interval, row.plan.amount = SubscriptionStatus.ACTIVE, "year", 99000
        db.session.flush()
        assert db.session.scalar(tenants_query(None, None)[1]) == 8250
        db.session.rollback()


def test_the_tenant_page_shows_subscription_invoices_alerts_and_audit(billing_app, admin_http, acme_on_pro):
    page = admin_http.get(f"/admin/tenants/{acme_on_pro.id}").get_data(as_text=True)
    assert "Acme Analytics" in page and "Renewal payment failed" in page
    assert 'id="subscriptions"' in page and "Visa •••• 4242" in page and "badge-active" in page
    assert 'id="tenant-invoices"' in page and "R$99.00" in page
    for action in ("checkout.subscription.completed", "subscription.created", "customer.created"):
        assert f'data-action="{action}"' in page
    assert admin_http.get("/admin/tenants/999999").status_code == 404


def test_a_superadmin_reads_a_tenants_billing_and_invoice_pages(billing_app, admin_http, acme_on_pro):
    assert admin_http.get(f"/apps/{acme_on_pro.id}/billing").status_code == 200
    with short_session(billing_app) as session:
        from billing.models import KernelInvoice
        invoice_id = session.scalar(select(KernelInvoice.id))
    assert admin_http.get(f"/apps/{acme_on_pro.id}/invoices/{invoice_id}").status_code == 200


def test_alerts_are_listed_and_resolved_with_an_audit_row(billing_app, admin_http, acme_on_pro, superadmin):
    page = admin_http.get("/admin/alerts").get_data(as_text=True)
    assert 'data-kind="payment_failed"' in page
    with short_session(billing_app) as session:
        alert_id = session.scalar(select(Alert.id))
    response = admin_http.post(f"/admin/alerts/{alert_id}/resolve", data={"next": "/admin/alerts"})
    assert response.status_code == 302
    with short_session(billing_app) as session:
        alert = session.get(Alert, alert_id)
        assert alert.resolved_at is not None and alert.resolved_by_id == superadmin.id
    assert "alert.resolved" in audit_actions(billing_app, acme_on_pro.id)
    assert 'data-kind="payment_failed"' not in admin_http.get("/admin/alerts").get_data(as_text=True)
    assert 'data-kind="payment_failed"' in admin_http.get("/admin/alerts?state=resolved").get_data(as_text=True)
    assert admin_http.post("/admin/alerts/999999/resolve").status_code == 404


def test_the_audit_log_filters_by_app_and_action(billing_app, admin_http, acme_on_pro, other_tenant):
    everything = admin_http.get("/admin/audit").get_data(as_text=True)
    assert 'data-action="checkout.subscription.completed"' in everything
    only_checkout = admin_http.get(f"/admin/audit?app_id={acme_on_pro.id}&action=checkout.").get_data(as_text=True)
    actions = set(re.findall(r'<tr data-action="([^"]+)"', only_checkout))
    assert actions and all(action.startswith("checkout.") for action in actions)
    assert "No entries match these filters." in admin_http.get(f"/admin/audit?app_id={other_tenant.id}").get_data(as_text=True)


def test_owners_never_see_the_superadmin_pages(billing_app, owner_http, acme_on_pro):
    for path in ("/admin/", f"/admin/tenants/{acme_on_pro.id}", "/admin/alerts", "/admin/audit"):
        assert owner_http.get(path).status_code == 404, path
    with short_session(billing_app) as session:
        alert_id = session.scalar(select(Alert.id))
    assert owner_http.post(f"/admin/alerts/{alert_id}/resolve").status_code == 404

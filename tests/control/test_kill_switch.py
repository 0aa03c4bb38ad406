"""The kill switch: one rule, held at each entry point (events, dunning, owners' actions), resumed in steps."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from billing.control import NotPaused, billing_paused, pause_billing, resume_billing
from billing.models import (
    App,
    AppSubscription,
    AuditLog,
    BillingPause,
    KernelCheckoutSession,
    ProcessedWebhook,
    Release,
    ReleaseKind,
    WebhookStatus,
)
from portal.extensions import db
from tests.helpers.data import audit_actions_of_event, count, make_app, make_user, webhook_row
from tests.helpers.control import OPERATOR, pause, resume
from tests.webhooks.helpers import OLD_SECRET, SECRET, event, post, subscription


@pytest.fixture(autouse=True)
def _webhook_secrets(app_config):
    app_config["STRIPE_KERNEL_WEBHOOK_SECRETS"] = [SECRET, OLD_SECRET]


@pytest.fixture
def two_tenants(app, tenant):
    """Acme (``cus_acme``) and Bravo (``cus_bravo``), the paid plans priced as the payloads name them."""
    bravo = make_app(app, "Bravo Delivery", make_user(app, "owner@bravo.test"), slug="bravo")
    with app.app_context():
        db.session.get(App, tenant.id).stripe_customer_id = "cus_acme"
        db.session.get(App, bravo.id).stripe_customer_id = "cus_bravo"
        from billing.models import KernelPlan
        for plan in db.session.scalars(select(KernelPlan)):
            if plan.code in ("pro", "enterprise"):
                plan.stripe_price_id = {"pro": "price_pro", "enterprise": "price_ent"}[plan.code]
        db.session.commit()
    return tenant, bravo


def test_the_rule_pause_one_app_first_then_all(app, tenant):
    other = make_app(app, "Other", slug="other")
    with app.app_context():
        assert not billing_paused(db.session, tenant.id)
    pause(app)
    with app.app_context():
        assert billing_paused(db.session, tenant.id) and billing_paused(db.session, other.id)
        assert billing_paused(db.session, None)  # what belongs to no app of ours waits too
    resume(app, [tenant.id])
    with app.app_context():
        assert not billing_paused(db.session, tenant.id)
        assert billing_paused(db.session, other.id) and billing_paused(db.session, None)
    resume(app)
    with app.app_context():
        assert not billing_paused(db.session, other.id) and not billing_paused(db.session, None)
        with pytest.raises(NotPaused):
            resume_billing(db.session, actor=OPERATOR, gateway_mode="sandbox")


def test_pausing_needs_a_reason_pausing_twice_keeps_one_pause_and_each_step_is_audited_and_in_the_ledger(app, tenant):
    with app.app_context():
        with pytest.raises(ValueError):
            pause_billing(db.session, reason="   ", actor=OPERATOR, gateway_mode="sandbox")
        db.session.rollback()
    pause(app, "first")
    pause(app, "second")
    with app.app_context():
        pauses = db.session.scalars(select(BillingPause)).all()
        assert [(p.reason, p.paused_by, p.resumed_at) for p in pauses] == [("first", "ops@kernel.test", None)]
        with pytest.raises(ValueError):  # an unknown app changes nothing
            resume_billing(db.session, actor=OPERATOR, gateway_mode="sandbox", app_ids=[tenant.id, 999])
        db.session.rollback()
    resume(app, [tenant.id])
    resume(app, [tenant.id])  # already resumed first: nothing more to record
    resume(app)
    with app.app_context():
        ledger = [(r.kind, r.actor, r.gateway_mode) for r in db.session.scalars(select(Release).order_by(Release.id))]
        assert ledger == [(ReleaseKind.BILLING_PAUSED, "ops@kernel.test", "sandbox"),
                          (ReleaseKind.BILLING_RESUMED, "ops@kernel.test", "sandbox"),
                          (ReleaseKind.BILLING_RESUMED, "ops@kernel.test", "sandbox")]
        actions = list(db.session.scalars(select(AuditLog.action).where(AuditLog.action.startswith("billing."))
                                          .order_by(AuditLog.id)))
        assert actions == ["billing.paused", "billing.resumed_for_app", "billing.resumed"]


def test_events_are_recorded_but_held_and_resuming_applies_them_in_order_once(app, client, two_tenants):
    acme, bravo = two_tenants
    pause(app)
    created = event("customer.subscription.created", subscription(sub_id="sub_acme"), created=1_800_000_000)
    canceling = event("customer.subscription.updated",
                      subscription(sub_id="sub_acme", cancel_at_period_end=True), created=1_800_000_100)
    bravo_created = event("customer.subscription.created", subscription(sub_id="sub_bravo", customer="cus_bravo"),
                          created=1_800_000_050)
    for payload in (canceling, created, bravo_created):  # delivered out of order, as Stripe may
        assert post(client, payload).status_code == 200
    for payload in (created, canceling, bravo_created):
        row = webhook_row(app, payload["id"])
        assert row.status == WebhookStatus.RECEIVED and row.processed_at is None  # recorded, verified, not applied
    assert count(app, AppSubscription) == 0

    assert resume(app, [acme.id]) == 2  # Acme's two events, oldest first; Bravo's wait
    with app.app_context():
        sub = db.session.scalar(select(AppSubscription).where(AppSubscription.stripe_subscription_id == "sub_acme"))
        assert sub.cancel_at_period_end is True  # the later event won, whatever the delivery order
    assert webhook_row(app, bravo_created["id"]).status == WebhookStatus.RECEIVED
    assert count(app, AppSubscription, AppSubscription.app_id == bravo.id) == 0

    assert resume(app) == 1
    assert webhook_row(app, bravo_created["id"]).status == WebhookStatus.PROCESSED
    assert count(app, AppSubscription, AppSubscription.app_id == bravo.id) == 1
    for payload in (created, canceling, bravo_created):  # once: one processing each, one audit trail each
        assert webhook_row(app, payload["id"]).attempts == 1
    assert audit_actions_of_event(app, created["id"]).count("subscription.created") == 1
    assert count(app, ProcessedWebhook, ProcessedWebhook.status == WebhookStatus.RECEIVED) == 0


def test_owners_actions_are_refused_with_a_clear_message_and_nothing_is_written(app, owner_client, tenant):
    pause(app)
    audit_before = count(app, AuditLog)
    for path, data in ((f"/apps/{tenant.id}/billing/checkout", {"plan": "pro", "attempt": "attempt-token-1"}),
                       (f"/apps/{tenant.id}/billing/upgrade", {"plan": "enterprise", "attempt": "attempt-token-2",
                                                               "proration_date": "1800000000"}),
                       (f"/apps/{tenant.id}/billing/downgrade", {"plan": "pro", "attempt": "attempt-token-3"}),
                       (f"/apps/{tenant.id}/billing/cancel", {}),
                       (f"/apps/{tenant.id}/billing/payment-method", {"attempt": "attempt-token-4"})):
        response = owner_client.post(path, data=data, follow_redirects=True)
        assert response.status_code == 200, path
        assert "Billing is paused for maintenance, so nothing was changed or charged" in response.get_data(True), path
    assert count(app, KernelCheckoutSession) == 0
    assert count(app, AuditLog) == audit_before

    api = owner_client.post(f"/api/v1/apps/{tenant.id}/billing/checkout", json={"plan": "pro"})
    assert api.status_code == 409 and api.get_json()["error"]["reason"] == "billing_paused"


def test_owners_see_the_notice_while_paused_and_not_its_reason(app, owner_client, tenant):
    assert "billing-paused-banner" not in owner_client.get(f"/apps/{tenant.id}/billing").get_data(True)
    pause(app, "card double charge in investigation")
    for path in ("/dashboard", f"/apps/{tenant.id}/billing", f"/apps/{tenant.id}/invoices"):
        page = owner_client.get(path).get_data(True)
        assert "billing-paused-banner" in page and "nothing will be charged meanwhile" in page, path
        assert "double charge" not in page
    resume(app, [tenant.id])  # this app runs again: its pages lose the notice
    assert "billing-paused-banner" not in owner_client.get(f"/apps/{tenant.id}/billing").get_data(True)

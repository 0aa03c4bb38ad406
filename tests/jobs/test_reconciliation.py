"""Reconciliation against the sandbox: a clean pair reports zero; each planted divergence is found and listed."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from billing import clock
from billing.models import (
    Alert,
    App,
    AppSubscription,
    AuditLog,
    KernelInvoice,
    ReconciliationDivergence,
    ReconciliationRun,
)
from billing.plans import plan_by_code
from billing.states import SubscriptionStatus
from billing.passes import reconciliation_pass
from portal.extensions import db
from portal.payments import gateway
from tests.helpers.dunning import advance_to, subscribe_directly


def _reconcile(application) -> int:
    with application.app_context():
        _job, run = reconciliation_pass(db.session, gateway(), trigger="test")
        return run.id


def _found(application, run_id: int) -> dict[tuple[str, str, str], tuple]:
    with application.app_context():
        rows = db.session.scalars(select(ReconciliationDivergence).where(ReconciliationDivergence.run_id == run_id))
        return {(row.object_type, row.kind, row.stripe_id): (row.local_value, row.stripe_value, row.healable)
                for row in rows}


def test_a_clean_pair_records_zero_divergences_with_counts(billing_app, tenant, sandbox):
    subscribe_directly(billing_app, tenant.id)
    with billing_app.app_context():
        price = plan_by_code(db.session, "pro").stripe_price_id
    sandbox.bulk_seed(150, price=price)  # another platform's customers: out of scope, but walked

    run_id = _reconcile(billing_app)
    with billing_app.app_context():
        run = db.session.get(ReconciliationRun, run_id)
        assert (run.status, run.divergence_count) == ("succeeded", 0)
        assert (run.subscriptions_checked, run.invoices_checked) == (1, 1)
        assert run.api_calls == 4  # 151 subscriptions and 151 invoices: two pages each, never one call per object
        assert db.session.scalar(select(func.count(Alert.id)).where(Alert.kind == "reconciliation_divergence")) == 0


def _plant(application, tenant_id: int, other_id: int) -> dict[str, str]:
    customer, subscription_id = subscribe_directly(application, tenant_id)
    with application.app_context():
        ours = db.session.scalar(select(AppSubscription).where(AppSubscription.app_id == tenant_id))
        ours.status = SubscriptionStatus.PAST_DUE  # status: Stripe says active
        ours.current_period_end = ours.current_period_end + timedelta(days=1)  # period
        invoice = db.session.scalar(select(KernelInvoice).where(KernelInvoice.app_id == tenant_id))
        invoice.amount_due = 9800  # amount
        invoice.status, invoice.amount_paid, invoice.amount_remaining = "open", 0, 9800  # paid state
        long_ago = clock.now() - timedelta(days=2)
        db.session.add(KernelInvoice(app_id=tenant_id, stripe_invoice_id="in_only_ours", status="open",
                                     amount_due=500, amount_paid=0, currency="BRL", created_at=long_ago))
        db.session.add(AppSubscription(app_id=tenant_id, plan=plan_by_code(db.session, "pro"),
                                       status=SubscriptionStatus.CANCELED, stripe_customer_id=customer,
                                       stripe_subscription_id="sub_only_ours", created_at=long_ago))
        # Only in Stripe: the other tenant subscribed, and nothing reached our tables.
        other = db.session.get(App, other_id)
        other.stripe_customer_id = gateway().create_customer(app_id=other_id, email=None, name=other.name).id
        db.session.commit()
        card = gateway().attach_payment_method(other.stripe_customer_id, "pm_card_visa")
        theirs = gateway().create_subscription(customer_id=other.stripe_customer_id,
                                               price_id=plan_by_code(db.session, "pro").stripe_price_id,
                                               app_id=other_id, attempt="test", payment_method_id=card.payment_method_id)
        invoice_id = invoice.stripe_invoice_id
    advance_to(application, clock.now() + timedelta(hours=1))  # older than the webhook grace
    return {"subscription": subscription_id, "invoice": invoice_id, "their_subscription": theirs.id,
            "their_invoice": theirs.latest_invoice}


def test_each_planted_divergence_is_found_with_both_values(billing_app, tenant, other_tenant):
    ids = _plant(billing_app, tenant.id, other_tenant.id)
    found = _found(billing_app, _reconcile(billing_app))

    assert found[("subscription", "status", ids["subscription"])] == ("past_due", "active", True)
    local_period, stripe_period, _ = found[("subscription", "period", ids["subscription"])]
    assert local_period[1] - stripe_period[1] == 86400 and local_period[0] == stripe_period[0]
    assert found[("invoice", "amount", ids["invoice"])] == (
        {"amount_due": 9800, "currency": "BRL"}, {"amount_due": 9900, "currency": "BRL"}, True)
    assert found[("invoice", "paid", ids["invoice"])] == (
        {"status": "open", "amount_paid": 0, "amount_remaining": 9800},
        {"status": "paid", "amount_paid": 9900, "amount_remaining": 0}, True)
    assert found[("subscription", "missing_local", ids["their_subscription"])][0] is None
    assert found[("invoice", "missing_local", ids["their_invoice"])][1]["amount_due"] == 9900
    assert found[("subscription", "missing_stripe", "sub_only_ours")][1:] == (None, False)
    assert found[("invoice", "missing_stripe", "in_only_ours")] == (
        {"status": "open", "amount_due": 500, "currency": "BRL"}, None, False)
    assert len(found) == 8

    with billing_app.app_context():
        alerts = db.session.scalar(select(func.count(Alert.id)).where(Alert.kind == "reconciliation_divergence"))
    assert alerts == 8
    again = _found(billing_app, _reconcile(billing_app))
    assert set(again) == set(found)
    with billing_app.app_context():  # an unfixed divergence is listed again but alerted once
        assert db.session.scalar(select(func.count(Alert.id)).where(Alert.kind == "reconciliation_divergence")) == 8


def test_heal_copies_stripe_state_and_is_audited(billing_app, tenant, other_tenant, superadmin_client, superadmin):
    ids = _plant(billing_app, tenant.id, other_tenant.id)
    run_id = _reconcile(billing_app)
    with billing_app.app_context():
        by_kind = {(d.kind, d.stripe_id): d.id for d in db.session.scalars(
            select(ReconciliationDivergence).where(ReconciliationDivergence.run_id == run_id))}

    page = superadmin_client.get(f"/admin/reconciliation/runs/{run_id}").get_data(as_text=True)
    assert "past_due" in page and "Heal from Stripe" in page and "sub_only_ours" in page

    response = superadmin_client.post(f"/admin/reconciliation/divergences/{by_kind[('status', ids['subscription'])]}/heal")
    assert response.status_code == 302
    with billing_app.app_context():
        row = db.session.scalar(select(AppSubscription).where(AppSubscription.stripe_subscription_id == ids["subscription"]))
        assert row.status == SubscriptionStatus.ACTIVE
        healed = db.session.get(ReconciliationDivergence, by_kind[("period", ids["subscription"])])
        assert healed.healed_at is not None and healed.healed_by_id == superadmin.id  # one sync healed both
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "reconciliation.healed"))
        assert entry.actor_user_id == superadmin.id and entry.object_id == ids["subscription"]
        assert entry.before["status"] == "past_due" and entry.after["status"] == "active"
        assert db.session.get(Alert, healed.alert_id).resolved_at is not None

    refused = superadmin_client.post(f"/admin/reconciliation/divergences/{by_kind[('missing_stripe', 'in_only_ours')]}/heal",
                                     follow_redirects=True)
    assert "cannot be healed automatically" in refused.get_data(as_text=True)
    with billing_app.app_context():
        assert db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "reconciliation.healed")) == 1

    superadmin_client.post(f"/admin/reconciliation/divergences/{by_kind[('paid', ids['invoice'])]}/heal")
    after = _found(billing_app, _reconcile(billing_app))
    assert not any(key[2] in (ids["subscription"], ids["invoice"]) for key in after)


def test_run_now_from_the_superadmin_page(billing_app, tenant, superadmin_client):
    subscribe_directly(billing_app, tenant.id)
    response = superadmin_client.post("/admin/reconciliation/run", follow_redirects=True)
    assert response.status_code == 200
    with billing_app.app_context():
        run = db.session.scalar(select(ReconciliationRun))
        assert run.trigger == "superadmin" and run.status == "succeeded" and run.divergence_count == 0
    page = response.get_data(as_text=True)
    assert "0 divergences." in page


def test_the_nightly_run_happens_once_a_night(billing_app, tenant):
    from jobs.reconciliation import run_nightly

    subscribe_directly(billing_app, tenant.id)
    first = run_nightly()
    assert first["divergences"] == 0 and first["api_calls"] == 2
    assert run_nightly() is None  # a second worker, or a retried job, the same night
    with billing_app.app_context():
        assert db.session.scalar(select(func.count(ReconciliationRun.id))) == 1

"""Upgrade (prorated, charged now), downgrade (at the period end), cancel and resume, through the pages."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from billing.models import Alert, AppSubscription, AuditLog, KernelInvoice
from billing.states import SubscriptionStatus
from portal.payments import gateway
from tests.helpers.clients import local_path, pay_hosted_checkout, subscribe
from tests.helpers.data import audit_actions, count, set_plan, short_session, subscription_of
from tests.helpers.contract import next_thirty_day_month_start

FAILS_ON_CHARGE = "4000 0000 0000 0341"


def start_of_a_thirty_day_month(app, sandbox):
    """Move the sandbox clock to midnight of a 30-day month, so a monthly period lasts exactly 30 days."""
    with app.app_context():
        now = gateway().now()
    sandbox.advance(to=int(next_thirty_day_month_start(now + timedelta(days=1)).timestamp()))


def halfway_through_the_period(app, sandbox, app_id):
    row = subscription_of(app, app_id)
    assert row.current_period_end - row.current_period_start == timedelta(days=30)
    sandbox.advance(to=int((row.current_period_start + timedelta(days=15)).timestamp()))


def preview_form(client, app_id, plan="enterprise"):
    """Open the upgrade preview; returns the page and the values its confirm form would post."""
    page = client.get(f"/apps/{app_id}/billing/upgrade?plan={plan}")
    assert page.status_code == 200, page.headers.get("Location")
    html = page.get_data(as_text=True)
    values = dict(re.findall(r'name="(plan|proration_date|attempt)" value="([^"]+)"', html))
    return html, values


def stripe_updates(app, app_id):
    with app.app_context():
        customer = subscription_of(app, app_id).stripe_customer_id
        return [i for i in gateway().list_invoices(customer=customer) if i.billing_reason == "subscription_update"]


@pytest.fixture
def on_pro(billing_app, owner_http, tenant):
    subscribe(owner_http, tenant.id, "pro")
    return tenant


@pytest.fixture
def on_enterprise(billing_app, owner_http, tenant):
    subscribe(owner_http, tenant.id, "enterprise")
    return tenant


# ---------------------------------------------------------------- upgrade


def test_upgrade_reference_case_charges_200_reais(billing_app, owner_http, tenant, sandbox):
    """Pro R$ 99 -> Enterprise R$ 499 with 15 of 30 days left: the page shows R$ 200,00 and that is charged."""
    start_of_a_thirty_day_month(billing_app, sandbox)
    subscribe(owner_http, tenant.id, "pro")
    halfway_through_the_period(billing_app, sandbox, tenant.id)

    html, form = preview_form(owner_http, tenant.id)
    assert re.search(r'id="amount-now">R\$200\.00<', html)
    assert re.search(r'id="credit">-R\$49\.50<', html) and re.search(r'id="charge">R\$249\.50<', html)
    assert "R$499.00 per month" in html

    done = owner_http.post(f"/apps/{tenant.id}/billing/upgrade", data=form, follow_redirects=True)
    assert "Your app is now on Enterprise. R$200.00 was charged." in done.get_data(as_text=True)
    row = subscription_of(billing_app, tenant.id)
    assert row.plan.code == "enterprise" and row.status == SubscriptionStatus.ACTIVE
    with short_session(billing_app) as session:
        invoice = session.scalar(select(KernelInvoice).where(KernelInvoice.billing_reason == "subscription_update"))
        assert (invoice.amount_paid, invoice.status) == (20000, "paid")
        upgraded = session.scalar(select(AuditLog).where(AuditLog.action == "subscription.upgraded"))
        assert upgraded.before == {"plan": "pro"}
        assert upgraded.after["plan"] == "enterprise" and upgraded.after["charged"] == 20000
        assert upgraded.actor == "user" and upgraded.actor_user_id is not None and upgraded.correlation_id
    assert [i.amount_paid for i in stripe_updates(billing_app, tenant.id)] == [20000]


def test_a_double_submitted_upgrade_charges_once(billing_app, owner_http, on_pro):
    _, form = preview_form(owner_http, on_pro.id)
    owner_http.post(f"/apps/{on_pro.id}/billing/upgrade", data=form)
    again = owner_http.post(f"/apps/{on_pro.id}/billing/upgrade", data=form, follow_redirects=True)
    assert "The app is already on this plan." in again.get_data(as_text=True)
    assert len(stripe_updates(billing_app, on_pro.id)) == 1
    assert count(billing_app, AuditLog, AuditLog.action == "subscription.upgraded") == 1


def test_two_tabs_confirming_the_upgrade_charge_once(billing_app, owner_http, on_pro):
    _, first = preview_form(owner_http, on_pro.id)
    _, second = preview_form(owner_http, on_pro.id)
    assert first["attempt"] != second["attempt"]
    owner_http.post(f"/apps/{on_pro.id}/billing/upgrade", data=first)
    refused = owner_http.post(f"/apps/{on_pro.id}/billing/upgrade", data=second, follow_redirects=True)
    assert "The app is already on this plan." in refused.get_data(as_text=True)
    assert len(stripe_updates(billing_app, on_pro.id)) == 1


def test_a_declined_upgrade_changes_nothing(billing_app, owner_http, on_pro):
    card = owner_http.post(f"/apps/{on_pro.id}/billing/payment-method", data={"attempt": "card-0001"})
    saved = pay_hosted_checkout(card.headers["Location"], card_number=FAILS_ON_CHARGE)
    owner_http.get(local_path(saved.headers["Location"]))
    assert subscription_of(billing_app, on_pro.id).card_last4 == "0341"
    invoices_before = count(billing_app, KernelInvoice)

    _, form = preview_form(owner_http, on_pro.id)
    declined = owner_http.post(f"/apps/{on_pro.id}/billing/upgrade", data=form, follow_redirects=True)
    assert "Your card was declined" in declined.get_data(as_text=True)
    assert "declined (the card was declined)" not in declined.get_data(as_text=True)  # said once, not twice
    row = subscription_of(billing_app, on_pro.id)
    assert row.plan.code == "pro" and row.status == SubscriptionStatus.ACTIVE
    assert count(billing_app, KernelInvoice) == invoices_before
    assert "subscription.upgraded" not in audit_actions(billing_app, on_pro.id)
    with billing_app.app_context():
        assert gateway().retrieve_subscription(row.stripe_subscription_id).price_id == row.plan.stripe_price_id


def test_a_proration_that_disagrees_with_stripe_is_refused_and_alerted(billing_app, owner_http, on_pro):
    set_plan(billing_app, "enterprise", amount=49901)  # our price drifted one centavo from Stripe's
    response = owner_http.get(f"/apps/{on_pro.id}/billing/upgrade?plan=enterprise", follow_redirects=True)
    assert "We could not confirm the exact price of this change" in response.get_data(as_text=True)
    with short_session(billing_app) as session:
        alert = session.scalar(select(Alert).where(Alert.kind == "proration_mismatch"))
        assert alert.app_id == on_pro.id and alert.is_open
        assert alert.details["expected"] != alert.details["gateway"]
    assert subscription_of(billing_app, on_pro.id).plan.code == "pro"
    assert stripe_updates(billing_app, on_pro.id) == []


def test_a_confirmation_whose_proration_now_disagrees_is_refused(billing_app, owner_http, on_pro):
    _, form = preview_form(owner_http, on_pro.id)
    set_plan(billing_app, "enterprise", amount=49901)
    owner_http.post(f"/apps/{on_pro.id}/billing/upgrade", data=form)
    assert subscription_of(billing_app, on_pro.id).plan.code == "pro"
    assert stripe_updates(billing_app, on_pro.id) == []
    assert count(billing_app, Alert, Alert.kind == "proration_mismatch") == 1


@pytest.mark.parametrize("shift", [-timedelta(minutes=20), timedelta(minutes=5)], ids=["too-old", "future"])
def test_a_stale_or_forged_preview_date_shows_a_fresh_preview(billing_app, owner_http, on_pro, shift):
    _, form = preview_form(owner_http, on_pro.id)
    form["proration_date"] = str(int(form["proration_date"]) + int(shift.total_seconds()))
    response = owner_http.post(f"/apps/{on_pro.id}/billing/upgrade", data=form)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/apps/{on_pro.id}/billing/upgrade?plan=enterprise"
    assert subscription_of(billing_app, on_pro.id).plan.code == "pro"
    assert stripe_updates(billing_app, on_pro.id) == []


def test_stripe_down_during_an_upgrade_changes_nothing(billing_app, owner_http, on_pro, sandbox):
    _, form = preview_form(owner_http, on_pro.id)
    sandbox.fail(count=20, status=503)
    page = owner_http.post(f"/apps/{on_pro.id}/billing/upgrade", data=form, follow_redirects=True)
    assert "Payments are temporarily unavailable, nothing was charged" in page.get_data(as_text=True)
    assert subscription_of(billing_app, on_pro.id).plan.code == "pro"
    assert "subscription.upgraded" not in audit_actions(billing_app, on_pro.id)


def test_stripe_down_on_the_preview_page_says_so(billing_app, owner_http, on_pro, sandbox):
    sandbox.fail(count=20, status=503)
    page = owner_http.get(f"/apps/{on_pro.id}/billing/upgrade?plan=enterprise", follow_redirects=True)
    assert "Payments are temporarily unavailable, nothing was charged" in page.get_data(as_text=True)


def test_plan_changes_the_rules_refuse(billing_app, owner_http, tenant):
    no_plan = owner_http.get(f"/apps/{tenant.id}/billing/upgrade?plan=enterprise", follow_redirects=True)
    assert "This app has no active subscription." in no_plan.get_data(as_text=True)
    subscribe(owner_http, tenant.id, "pro")
    same = owner_http.get(f"/apps/{tenant.id}/billing/upgrade?plan=pro", follow_redirects=True)
    assert "The app is already on this plan." in same.get_data(as_text=True)
    up = owner_http.post(f"/apps/{tenant.id}/billing/downgrade", data={"plan": "enterprise", "attempt": "dg-000001"},
                         follow_redirects=True)
    assert "That plan is not a downgrade." in up.get_data(as_text=True)
    assert owner_http.post(f"/apps/{tenant.id}/billing/upgrade",
                           data={"plan": "enterprise", "attempt": "up-000001"}).status_code == 400


def test_past_due_shows_the_dunning_banner_and_blocks_plan_changes(billing_app, owner_http, on_pro):
    with short_session(billing_app) as session:
        row = session.scalar(select(AppSubscription))
        row.move_to(SubscriptionStatus.PAST_DUE)
    page = owner_http.get(f"/apps/{on_pro.id}/billing").get_data(as_text=True)
    assert 'id="dunning-banner"' in page and f'href="/apps/{on_pro.id}/pay"' in page
    assert 'data-plan="enterprise" data-action="blocked"' in page
    refused = owner_http.get(f"/apps/{on_pro.id}/billing/upgrade?plan=enterprise", follow_redirects=True)
    assert "An invoice is overdue. Pay it before changing plans." in refused.get_data(as_text=True)


# ---------------------------------------------------------------- downgrade


def test_downgrade_is_scheduled_for_the_period_end_and_can_be_undone(billing_app, owner_http, on_enterprise):
    app_id = on_enterprise.id
    confirm = owner_http.get(f"/apps/{app_id}/billing/downgrade?plan=pro").get_data(as_text=True)
    attempt = re.search(r'name="attempt" value="([^"]+)"', confirm).group(1)
    done = owner_http.post(f"/apps/{app_id}/billing/downgrade", data={"plan": "pro", "attempt": attempt},
                           follow_redirects=True).get_data(as_text=True)
    assert "Downgrade scheduled: Pro from" in done

    row = subscription_of(billing_app, app_id)
    assert row.plan.code == "enterprise" and row.scheduled_plan.code == "pro"
    assert row.scheduled_change_at == row.current_period_end
    assert 'id="scheduled-change"' in done and "Pro from" in done
    with billing_app.app_context():
        remote = gateway().retrieve_subscription(row.stripe_subscription_id)
        assert remote.schedule == row.stripe_schedule_id and remote.price_id == row.plan.stripe_price_id

    undone = owner_http.post(f"/apps/{app_id}/billing/downgrade/undo", follow_redirects=True).get_data(as_text=True)
    assert "The scheduled downgrade was undone." in undone and 'id="scheduled-change"' not in undone
    row = subscription_of(billing_app, app_id)
    assert row.scheduled_plan is None and row.stripe_schedule_id is None and row.plan.code == "enterprise"
    actions = audit_actions(billing_app, app_id)
    assert actions.index("subscription.downgrade_scheduled") < actions.index("subscription.downgrade_undone")

    # Changing one's mind again in the same period schedules a new change (not a replay of the released one).
    again = owner_http.post(f"/apps/{app_id}/billing/downgrade", data={"plan": "pro", "attempt": "second-attempt"},
                            follow_redirects=True).get_data(as_text=True)
    assert "Downgrade scheduled: Pro from" in again
    assert subscription_of(billing_app, app_id).scheduled_plan.code == "pro"


def test_the_scheduled_downgrade_applies_at_the_period_end(billing_app, owner_http, on_enterprise, sandbox):
    from billing.audit import Origin
    from billing.sync import sync_subscription_from_gateway
    from portal.extensions import db

    owner_http.post(f"/apps/{on_enterprise.id}/billing/downgrade", data={"plan": "pro", "attempt": "dg-000001"})
    row = subscription_of(billing_app, on_enterprise.id)
    sandbox.advance(to=int((row.current_period_end + timedelta(hours=1)).timestamp()))
    with billing_app.app_context():
        sync_subscription_from_gateway(db.session, gateway(), row.stripe_subscription_id,
                                       origin=Origin(actor="test"))
        db.session.commit()
    after = subscription_of(billing_app, on_enterprise.id)
    assert after.plan.code == "pro" and after.scheduled_plan is None
    assert after.current_period_start == row.current_period_end


# ---------------------------------------------------------------- cancel and resume


def test_cancel_keeps_access_until_the_period_end_and_resume_undoes_it(billing_app, owner_http, on_pro):
    app_id = on_pro.id
    assert "Cancel at the end of the period" in owner_http.get(f"/apps/{app_id}/billing/cancel").get_data(as_text=True)
    page = owner_http.post(f"/apps/{app_id}/billing/cancel", follow_redirects=True).get_data(as_text=True)
    assert "You keep access until" in page and 'id="access-until"' in page and 'id="resume"' in page
    row = subscription_of(billing_app, app_id)
    assert row.cancel_at_period_end and row.status == SubscriptionStatus.ACTIVE
    with billing_app.app_context():
        assert gateway().retrieve_subscription(row.stripe_subscription_id).cancel_at_period_end

    again = owner_http.post(f"/apps/{app_id}/billing/cancel", follow_redirects=True).get_data(as_text=True)
    assert "The subscription was already set to end." in again

    resumed = owner_http.post(f"/apps/{app_id}/billing/resume", follow_redirects=True).get_data(as_text=True)
    assert "Your subscription will renew as usual." in resumed and 'id="renews-on"' in resumed
    assert not subscription_of(billing_app, app_id).cancel_at_period_end
    actions = audit_actions(billing_app, app_id)
    assert actions.index("subscription.cancel_scheduled") < actions.index("subscription.resumed")


def test_resume_after_the_period_has_ended_is_refused(billing_app, owner_http, on_pro, sandbox):
    owner_http.post(f"/apps/{on_pro.id}/billing/cancel")
    row = subscription_of(billing_app, on_pro.id)
    sandbox.advance(to=int((row.current_period_end + timedelta(hours=1)).timestamp()))
    refused = owner_http.post(f"/apps/{on_pro.id}/billing/resume", follow_redirects=True)
    assert "The billing period has already ended." in refused.get_data(as_text=True)
    with billing_app.app_context():
        assert gateway().retrieve_subscription(row.stripe_subscription_id).status == "canceled"


def test_upgrade_then_cancel_the_same_day(billing_app, owner_http, on_pro):
    _, form = preview_form(owner_http, on_pro.id)
    owner_http.post(f"/apps/{on_pro.id}/billing/upgrade", data=form)
    owner_http.post(f"/apps/{on_pro.id}/billing/cancel")
    row = subscription_of(billing_app, on_pro.id)
    assert row.plan.code == "enterprise" and row.cancel_at_period_end and row.status == SubscriptionStatus.ACTIVE
    (charged,) = stripe_updates(billing_app, on_pro.id)
    assert charged.status == "paid"


def test_canceling_drops_a_scheduled_downgrade(billing_app, owner_http, on_enterprise):
    owner_http.post(f"/apps/{on_enterprise.id}/billing/downgrade", data={"plan": "pro", "attempt": "dg-000001"})
    assert "will be dropped" in owner_http.get(f"/apps/{on_enterprise.id}/billing/cancel").get_data(as_text=True)
    owner_http.post(f"/apps/{on_enterprise.id}/billing/cancel")
    row = subscription_of(billing_app, on_enterprise.id)
    assert row.cancel_at_period_end and row.scheduled_plan is None and row.stripe_schedule_id is None
    with billing_app.app_context():
        remote = gateway().retrieve_subscription(row.stripe_subscription_id)
        assert remote.schedule is None and remote.cancel_at_period_end


def test_stripe_down_while_canceling_changes_nothing(billing_app, owner_http, on_pro, sandbox):
    sandbox.fail(count=20, status=503)
    page = owner_http.post(f"/apps/{on_pro.id}/billing/cancel", follow_redirects=True).get_data(as_text=True)
    assert "Payments are temporarily unavailable, nothing was charged" in page
    assert not subscription_of(billing_app, on_pro.id).cancel_at_period_end
    assert "subscription.cancel_scheduled" not in audit_actions(billing_app, on_pro.id)


def test_upgrading_during_a_trial_charges_nothing_and_keeps_the_trial(billing_app, owner_http, tenant):
    set_plan(billing_app, "pro", trial_days=14)
    subscribe(owner_http, tenant.id, "pro")
    html, form = preview_form(owner_http, tenant.id)
    assert "Your trial continues on the new plan" in html and re.search(r'id="amount-now">R\$0\.00<', html)
    owner_http.post(f"/apps/{tenant.id}/billing/upgrade", data=form)
    row = subscription_of(billing_app, tenant.id)
    assert row.plan.code == "enterprise" and row.status == SubscriptionStatus.TRIALING
    assert all(invoice.amount_paid == 0 for invoice in stripe_updates(billing_app, tenant.id))

"""Choosing a plan and paying through Stripe Checkout, from the billing page, against the sandbox."""
from datetime import timedelta

from sqlalchemy import select

from billing.checkout import complete_checkout
from billing.models import (
    App,
    AppSubscription,
    AuditLog,
    CheckoutStatus,
    KernelCheckoutSession,
    KernelInvoice,
)
from billing.states import SubscriptionStatus
from billing.audit import Origin
from portal.extensions import db
from portal.payments import gateway
from tests.helpers.clients import DECLINED, MASTERCARD, local_path, open_checkout, pay_hosted_checkout, subscribe
from tests.helpers.data import audit_actions, count, customer_of, set_plan, short_session, subscription_of
from tests.webhooks.helpers import SECRET, event, post

WEBHOOK = Origin(actor="webhook", correlation_id="evt_test")


def _session_ids(app, app_id):
    with short_session(app) as session:
        return list(session.scalars(select(KernelCheckoutSession.stripe_session_id)
                                    .where(KernelCheckoutSession.app_id == app_id)
                                    .order_by(KernelCheckoutSession.id)))


def test_checkout_with_a_good_card_activates_the_subscription(billing_app, owner_http, tenant):
    page = owner_http.get(f"/apps/{tenant.id}/billing").get_data(as_text=True)
    assert 'data-plan="pro" data-action="subscribe"' in page

    back = subscribe(owner_http, tenant.id, "pro")
    assert back.status_code == 302 and back.headers["Location"] == f"/apps/{tenant.id}/billing"

    row = subscription_of(billing_app, tenant.id)
    assert row.status == SubscriptionStatus.ACTIVE and row.plan.code == "pro"
    assert (row.card_brand, row.card_last4) == ("visa", "4242")
    assert customer_of(billing_app, tenant.id) == row.stripe_customer_id
    with short_session(billing_app) as session:
        invoice = session.scalar(select(KernelInvoice).where(KernelInvoice.app_id == tenant.id))
        assert (invoice.status, invoice.amount_paid, invoice.billing_reason) == ("paid", 9900, "subscription_create")
    actions = audit_actions(billing_app, tenant.id)
    for action in ("customer.created", "checkout.subscription.opened", "subscription.created",
                   "checkout.subscription.completed"):
        assert action in actions

    page = owner_http.get(f"/apps/{tenant.id}/billing").get_data(as_text=True)
    assert "Thank you! Your app is now on Pro." in page
    assert 'id="plan-name">Pro<' in page and "badge-active" in page
    assert "Visa •••• 4242" in page
    assert 'data-plan="enterprise" data-action="upgrade"' in page


def test_reloading_the_success_page_changes_nothing(billing_app, owner_http, tenant):
    url = open_checkout(owner_http, tenant.id)
    success = local_path(pay_hosted_checkout(url).headers["Location"])
    assert owner_http.get(success).status_code == 302
    again = owner_http.get(success, follow_redirects=True)
    assert "Your app is now on Pro" in again.get_data(as_text=True)
    assert count(billing_app, AppSubscription) == 1
    assert count(billing_app, KernelInvoice) == 1
    assert count(billing_app, AuditLog, AuditLog.action == "checkout.subscription.completed") == 1


def test_webhook_first_then_the_redirect(billing_app, owner_http, tenant):
    url = open_checkout(owner_http, tenant.id)
    success = local_path(pay_hosted_checkout(url).headers["Location"])
    session_id = success.split("session_id=")[1]
    with billing_app.app_context():
        assert complete_checkout(db.session, gateway(), session_id, origin=WEBHOOK).newly_completed
        db.session.commit()

    page = owner_http.get(success, follow_redirects=True).get_data(as_text=True)
    assert "Your app is now on Pro" in page
    assert count(billing_app, AppSubscription) == 1
    completions = count(billing_app, AuditLog, AuditLog.action == "checkout.subscription.completed")
    by_webhook = count(billing_app, AuditLog, AuditLog.action == "checkout.subscription.completed",
                       AuditLog.actor == "webhook")
    assert completions == by_webhook == 1


def test_redirect_first_then_the_webhook(billing_app, owner_http, tenant):
    subscribe(owner_http, tenant.id)
    session_id = _session_ids(billing_app, tenant.id)[0]
    with billing_app.app_context():
        late = complete_checkout(db.session, gateway(), session_id, origin=WEBHOOK)
        db.session.commit()
        assert late.is_complete and not late.newly_completed
    assert count(billing_app, AppSubscription) == 1
    assert count(billing_app, AuditLog, AuditLog.action == "checkout.subscription.completed") == 1


def test_the_event_through_the_webhook_endpoint_then_the_redirect(billing_app, owner_http, tenant):
    """The webhook pipeline (signed event, inbox, job) completing first; the owner's return finds it done."""
    billing_app.config["STRIPE_KERNEL_WEBHOOK_SECRETS"] = [SECRET]
    url = open_checkout(owner_http, tenant.id)
    success = local_path(pay_hosted_checkout(url).headers["Location"])
    session_id = success.split("session_id=")[1]
    completed = event("checkout.session.completed", {"id": session_id, "object": "checkout.session"})
    assert post(billing_app.test_client(), completed).status_code == 200
    assert subscription_of(billing_app, tenant.id).status == SubscriptionStatus.ACTIVE

    assert "Your app is now on Pro" in owner_http.get(success, follow_redirects=True).get_data(as_text=True)
    assert count(billing_app, AppSubscription) == 1
    assert count(billing_app, AuditLog, AuditLog.action == "checkout.subscription.completed") == 1


def test_coming_back_without_paying_changes_nothing(billing_app, owner_http, tenant):
    open_checkout(owner_http, tenant.id)
    response = owner_http.get(f"/billing/cancel?app_id={tenant.id}", follow_redirects=True)
    assert "Checkout was canceled. Nothing was charged" in response.get_data(as_text=True)
    assert count(billing_app, AppSubscription) == 0
    with short_session(billing_app) as session:
        assert session.scalar(select(KernelCheckoutSession.status)) == CheckoutStatus.OPEN


def test_success_before_paying_says_so_and_changes_nothing(billing_app, owner_http, tenant):
    open_checkout(owner_http, tenant.id)
    session_id = _session_ids(billing_app, tenant.id)[0]
    page = owner_http.get(f"/billing/success?session_id={session_id}", follow_redirects=True)
    assert "The payment is not complete yet." in page.get_data(as_text=True)
    assert count(billing_app, AppSubscription) == 0


def test_a_declined_card_creates_no_subscription(billing_app, owner_http, tenant):
    url = open_checkout(owner_http, tenant.id)
    declined = pay_hosted_checkout(url, card_number=DECLINED)
    assert declined.status_code == 402
    assert "Your card was declined." in declined.text
    assert count(billing_app, AppSubscription) == 0
    with billing_app.app_context():
        assert gateway().list_subscriptions(customer=customer_of(billing_app, tenant.id)).items == []


def test_a_double_click_opens_one_session(billing_app, owner_http, tenant):
    first = open_checkout(owner_http, tenant.id, attempt="same-attempt-1")
    second = open_checkout(owner_http, tenant.id, attempt="same-attempt-1")
    assert first == second
    assert count(billing_app, KernelCheckoutSession) == 1


def test_two_tabs_only_the_newest_session_can_be_paid(billing_app, owner_http, tenant):
    first = open_checkout(owner_http, tenant.id, attempt="tab-one-0001")
    second = open_checkout(owner_http, tenant.id, attempt="tab-two-0002")
    assert first != second
    older_id, newer_id = _session_ids(billing_app, tenant.id)
    with billing_app.app_context():
        assert gateway().retrieve_checkout_session(older_id).status == "expired"
        statuses = dict(db.session.execute(select(KernelCheckoutSession.stripe_session_id,
                                                  KernelCheckoutSession.status)).all())
    assert statuses == {older_id: CheckoutStatus.EXPIRED, newer_id: CheckoutStatus.OPEN}
    assert count(billing_app, AuditLog, AuditLog.action == "checkout.subscription.expired",
                 AuditLog.object_id == older_id) == 1

    refused = pay_hosted_checkout(first)
    assert refused.status_code not in (302, 303) and "expired" in refused.text
    subscribe_back = pay_hosted_checkout(second)
    owner_http.get(local_path(subscribe_back.headers["Location"]))
    assert count(billing_app, AppSubscription) == 1


def test_a_tab_paid_meanwhile_wins_and_the_new_checkout_is_refused(billing_app, owner_http, tenant):
    first = open_checkout(owner_http, tenant.id, attempt="tab-one-0001")
    pay_hosted_checkout(first)  # paid, but the owner never came back to /billing/success
    response = owner_http.post(f"/apps/{tenant.id}/billing/checkout", data={"plan": "enterprise",
                                                                          "attempt": "tab-two-0002"})
    assert response.status_code == 302
    assert count(billing_app, AppSubscription) == 1
    assert subscription_of(billing_app, tenant.id).plan.code == "pro"
    newest = _session_ids(billing_app, tenant.id)[-1]
    with billing_app.app_context():
        assert gateway().retrieve_checkout_session(newest).status == "expired"
    page = owner_http.get(f"/apps/{tenant.id}/billing").get_data(as_text=True)
    assert "This app already has a subscription" in page


def test_checkout_is_refused_while_a_subscription_is_live(billing_app, owner_http, tenant):
    subscribe(owner_http, tenant.id)
    response = owner_http.post(f"/apps/{tenant.id}/billing/checkout",
                               data={"plan": "enterprise", "attempt": "another-attempt"}, follow_redirects=True)
    assert "This app already has a subscription" in response.get_data(as_text=True)
    assert count(billing_app, KernelCheckoutSession) == 1


def test_a_plan_with_a_trial_starts_trialing(billing_app, owner_http, tenant):
    set_plan(billing_app, "pro", trial_days=14)
    page = owner_http.get(f"/apps/{tenant.id}/billing").get_data(as_text=True)
    assert "Start free trial" in page and "Free trial: 14 days" in page
    subscribe(owner_http, tenant.id)
    row = subscription_of(billing_app, tenant.id)
    assert row.status == SubscriptionStatus.TRIALING
    with billing_app.app_context():
        now = gateway().now()
    assert timedelta(days=13, hours=23) < row.trial_end - now <= timedelta(days=14)
    page = owner_http.get(f"/apps/{tenant.id}/billing").get_data(as_text=True)
    assert "Trial until" in page and "badge-trialing" in page


def test_stripe_unavailable_writes_nothing(billing_app, owner_http, tenant, sandbox):
    sandbox.fail(count=20, status=503)
    response = owner_http.post(f"/apps/{tenant.id}/billing/checkout", data={"plan": "pro", "attempt": "down-0001"},
                               follow_redirects=True)
    assert "Payments are temporarily unavailable, nothing was charged" in response.get_data(as_text=True)
    assert customer_of(billing_app, tenant.id) is None
    assert count(billing_app, KernelCheckoutSession) == 0
    assert audit_actions(billing_app, tenant.id) == []


def test_the_card_is_replaced_through_checkout_in_setup_mode(billing_app, owner_http, tenant):
    subscribe(owner_http, tenant.id)
    response = owner_http.post(f"/apps/{tenant.id}/billing/payment-method", data={"attempt": "card-0001"})
    assert response.status_code == 303
    saved = pay_hosted_checkout(response.headers["Location"], card_number=MASTERCARD)
    page = owner_http.get(local_path(saved.headers["Location"]), follow_redirects=True).get_data(as_text=True)
    assert "Your new card is saved" in page
    assert "Mastercard •••• 4444" in page
    assert "5555 5555 5555 4444" not in page and "5555555555554444" not in page
    row = subscription_of(billing_app, tenant.id)
    assert (row.card_brand, row.card_last4) == ("mastercard", "4444")
    with billing_app.app_context():
        assert gateway().retrieve_subscription(row.stripe_subscription_id).default_payment_method == \
            row.payment_method_id
    assert "checkout.setup.completed" in audit_actions(billing_app, tenant.id)


def test_bad_form_input_is_refused_and_changes_nothing(billing_app, owner_http, tenant):
    assert owner_http.post(f"/apps/{tenant.id}/billing/checkout",
                           data={"plan": "pro", "attempt": "x"}).status_code == 400
    unknown = owner_http.post(f"/apps/{tenant.id}/billing/checkout", data={"plan": "platinum",
                                                                         "attempt": "attempt-0001"},
                              follow_redirects=True)
    assert "Choose one of the plans below." in unknown.get_data(as_text=True)
    free = owner_http.post(f"/apps/{tenant.id}/billing/checkout", data={"plan": "free", "attempt": "attempt-0001"},
                           follow_redirects=True)
    assert "This plan cannot be bought." in free.get_data(as_text=True)
    assert count(billing_app, KernelCheckoutSession) == 0
    with billing_app.app_context():
        assert db.session.get(App, tenant.id).stripe_customer_id is None


def test_success_pages_of_another_tenant_are_not_found(billing_app, owner_http, other_http, tenant):
    url = open_checkout(owner_http, tenant.id)
    success = local_path(pay_hosted_checkout(url).headers["Location"])
    assert other_http.get(success).status_code == 404
    assert count(billing_app, AppSubscription) == 0
    assert owner_http.get("/billing/success?session_id=cs_test_not_ours").status_code == 404
    assert other_http.get(f"/billing/cancel?app_id={tenant.id}").status_code == 404


def test_stripe_down_on_return_says_so_and_a_reload_later_activates(billing_app, owner_http, tenant, sandbox):
    url = open_checkout(owner_http, tenant.id)
    success = local_path(pay_hosted_checkout(url).headers["Location"])
    sandbox.fail(count=20, status=503)
    page = owner_http.get(success, follow_redirects=True).get_data(as_text=True)
    assert "We could not confirm your payment with Stripe yet" in page
    assert count(billing_app, AppSubscription) == 0
    sandbox.fail(count=0)  # Stripe is back
    page = owner_http.get(success, follow_redirects=True).get_data(as_text=True)
    assert "Your app is now on Pro" in page
    assert subscription_of(billing_app, tenant.id).status == SubscriptionStatus.ACTIVE


def test_the_app_overview_shows_plan_renewal_card_and_latest_invoices(billing_app, owner_http, tenant):
    subscribe(owner_http, tenant.id)
    page = owner_http.get(f"/apps/{tenant.id}").get_data(as_text=True)
    assert 'id="overview-plan"' in page and "Pro" in page and "R$99.00 per month" in page
    assert "Renews on" in page and "Visa •••• 4242" in page
    with short_session(billing_app) as session:
        number = session.scalar(select(KernelInvoice.number))
    assert number in page and f"/apps/{tenant.id}/billing" in page

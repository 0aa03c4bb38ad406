"""billing.checkout.complete_checkout: the redirect and the webhook finish a session once, in either order."""
from sqlalchemy import func, select

from billing.checkout import complete_checkout
from billing.models import App, AppSubscription, AuditLog, CheckoutStatus, KernelCheckoutSession, KernelInvoice
from billing.plans import plan_by_code
from billing.states import SubscriptionStatus
from billing.audit import Origin
from portal.extensions import db
from portal.payments import gateway
from tests.helpers.clients import pay_hosted_checkout

USER = Origin(actor="user", correlation_id="req-1")
WEBHOOK = Origin(actor="webhook", correlation_id="evt_1")


def _open_session(app_id: int, mode: str = "subscription", attempt: str = "a1") -> KernelCheckoutSession:
    tenant = db.session.get(App, app_id)
    if tenant.stripe_customer_id is None:
        tenant.stripe_customer_id = gateway().create_customer(app_id=app_id, email=None, name=tenant.name).id
    plan = plan_by_code(db.session, "pro")
    urls = dict(success_url="http://portal.test/billing/success?session_id={CHECKOUT_SESSION_ID}",
                cancel_url="http://portal.test/billing/cancel")
    if mode == "subscription":
        remote = gateway().create_subscription_checkout(customer_id=tenant.stripe_customer_id,
                                                        price_id=plan.stripe_price_id, app_id=app_id,
                                                        plan_code="pro", attempt=attempt, **urls)
    else:
        remote = gateway().create_setup_checkout(customer_id=tenant.stripe_customer_id, app_id=app_id, currency="BRL",
                                                 attempt=attempt, **urls)
    local = KernelCheckoutSession(app_id=app_id, stripe_session_id=remote.id, mode=mode, url=remote.url,
                                  plan=plan if mode == "subscription" else None)
    db.session.add(local)
    db.session.commit()
    return local


def test_paid_session_activates_the_subscription_once_whoever_comes_first(billing_app, tenant):
    with billing_app.app_context():
        local = _open_session(tenant.id)
        session_id, url = local.stripe_session_id, local.url
    pay_hosted_checkout(url)

    with billing_app.app_context():
        first = complete_checkout(db.session, gateway(), session_id, origin=WEBHOOK)
        db.session.commit()
        assert first.newly_completed and first.is_complete
        again = complete_checkout(db.session, gateway(), session_id, origin=USER, app_id=tenant.id)
        db.session.commit()
        assert again.is_complete and not again.newly_completed

        subscription = db.session.scalar(select(AppSubscription))
        assert subscription.status == SubscriptionStatus.ACTIVE and subscription.plan.code == "pro"
        assert subscription.card_last4 == "4242"
        assert db.session.get(App, tenant.id).current_subscription.id == subscription.id
        invoice = db.session.scalar(select(KernelInvoice))
        assert invoice.status == "paid" and invoice.amount_paid == 9900
        assert db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "checkout.subscription.completed")) == 1


def test_an_unpaid_session_changes_nothing(billing_app, tenant):
    with billing_app.app_context():
        local = _open_session(tenant.id)
        result = complete_checkout(db.session, gateway(), local.stripe_session_id, origin=USER, app_id=tenant.id)
        db.session.commit()
        assert not result.is_complete and result.local.status == CheckoutStatus.OPEN
        assert db.session.scalar(select(func.count(AppSubscription.id))) == 0


def test_another_apps_session_is_not_completed(billing_app, tenant, other_tenant):
    with billing_app.app_context():
        local = _open_session(tenant.id)
        session_id, url = local.stripe_session_id, local.url
    pay_hosted_checkout(url)
    with billing_app.app_context():
        result = complete_checkout(db.session, gateway(), session_id, origin=USER, app_id=other_tenant.id)
        assert result.local is None
        assert db.session.scalar(select(func.count(AppSubscription.id))) == 0


def test_a_session_we_did_not_open_is_ignored(billing_app, tenant):
    with billing_app.app_context():
        result = complete_checkout(db.session, gateway(), "cs_test_unknown", origin=WEBHOOK)
        assert result.local is None


def test_setup_session_makes_the_new_card_the_default(billing_app, tenant):
    with billing_app.app_context():
        first = _open_session(tenant.id)
        url, first_id = first.url, first.stripe_session_id
    pay_hosted_checkout(url)
    with billing_app.app_context():
        complete_checkout(db.session, gateway(), first_id, origin=USER)
        db.session.commit()
        setup = _open_session(tenant.id, mode="setup", attempt="s1")
        setup_url, setup_id = setup.url, setup.stripe_session_id
    pay_hosted_checkout(setup_url, card_number="5555 5555 5555 4444")
    with billing_app.app_context():
        complete_checkout(db.session, gateway(), setup_id, origin=USER)
        db.session.commit()
        subscription = db.session.scalar(select(AppSubscription))
        assert (subscription.card_brand, subscription.card_last4) == ("mastercard", "4444")
        remote = gateway().retrieve_subscription(subscription.stripe_subscription_id)
        assert remote.default_payment_method == subscription.payment_method_id

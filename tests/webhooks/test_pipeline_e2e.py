"""End to end: the sandbox delivers real signed events to the running portal, and a real RQ worker handles them."""
from datetime import timedelta

from sqlalchemy import func, select

from billing.models import (Alert, App, AppSubscription, KernelCheckoutSession, KernelInvoice, KernelPayment,
                            KernelPaymentAttempt, ProcessedWebhook, WebhookStatus)
from billing.plans import plan_by_code
from billing.states import SubscriptionStatus
from portal.extensions import db
from portal.payments import gateway
from tests.helpers.clients import pay_hosted_checkout


def _open_checkout(app, app_id: int) -> tuple[str, str]:
    with app.app_context():
        tenant = db.session.get(App, app_id)
        tenant.stripe_customer_id = gateway().create_customer(app_id=app_id, email=None, name=tenant.name).id
        plan = plan_by_code(db.session, "pro")
        remote = gateway().create_subscription_checkout(
            customer_id=tenant.stripe_customer_id, price_id=plan.stripe_price_id, app_id=app_id, plan_code="pro",
            success_url="http://portal.test/s?session_id={CHECKOUT_SESSION_ID}", cancel_url="http://portal.test/c",
            attempt="e2e")
        db.session.add(KernelCheckoutSession(app_id=app_id, stripe_session_id=remote.id, mode="subscription",
                                             url=remote.url, plan=plan))
        db.session.commit()
        return remote.id, remote.url


def _statuses(app) -> dict[str, int]:
    with app.app_context():
        rows = db.session.execute(select(ProcessedWebhook.status, func.count(ProcessedWebhook.id))
                                  .group_by(ProcessedWebhook.status)).all()
        return {status.value: n for status, n in rows}


def test_a_subscription_s_life_arrives_by_webhook_alone(webhook_pipeline, sandbox, tenant, owner):
    app = webhook_pipeline.app
    session_id, url = _open_checkout(app, tenant.id)
    pay_hosted_checkout(url)  # the owner pays; nobody follows the success redirect
    webhook_pipeline.wait()

    deliveries = sandbox.deliveries()
    assert deliveries and all(d["status"] == 200 for d in deliveries), deliveries
    with app.app_context():
        assert db.session.scalar(select(func.count(ProcessedWebhook.id))) == len({d["event"] for d in deliveries})
        assert db.session.scalar(select(KernelCheckoutSession.status)).value == "complete"
        subscription = db.session.scalar(select(AppSubscription))
        assert (subscription.status, subscription.plan.code, subscription.card_last4) == (
            SubscriptionStatus.ACTIVE, "pro", "4242")
        assert db.session.scalar(select(KernelInvoice.status)) == "paid"
        payment = db.session.scalar(select(KernelPayment))
        assert (payment.amount, payment.status) == (9900, "succeeded") and payment.invoice_id is not None
        sub_id, customer = subscription.stripe_subscription_id, db.session.get(App, tenant.id).stripe_customer_id
        period_end = subscription.current_period_end
    assert "failed" not in _statuses(app)

    # A month later the renewal is declined: the portal hears it from Stripe and opens dunning.
    with app.app_context():
        failing = gateway().attach_payment_method(customer, "pm_card_chargeCustomerFail")
        gateway().set_default_payment_method(customer, failing.payment_method_id, subscription_id=sub_id)
    sandbox.advance(to=int((period_end + timedelta(hours=1)).timestamp()))
    webhook_pipeline.wait()

    with app.app_context():
        subscription = db.session.scalar(select(AppSubscription))
        assert subscription.status == SubscriptionStatus.PAST_DUE
        assert subscription.current_period_end > period_end
        attempt = db.session.scalar(select(KernelPaymentAttempt))
        assert (attempt.attempt_number, attempt.status.value) == (0, "failed")
        assert db.session.scalar(select(func.count(Alert.id)).where(Alert.kind == "payment_failed")) == 1
    assert "failed" not in _statuses(app)
    assert all(d["status"] == 200 for d in sandbox.deliveries())


def test_redelivered_events_are_acknowledged_and_change_nothing(webhook_pipeline, sandbox, tenant):
    app = webhook_pipeline.app
    _, url = _open_checkout(app, tenant.id)
    pay_hosted_checkout(url)
    webhook_pipeline.wait()
    with app.app_context():
        before = db.session.scalar(select(func.count(ProcessedWebhook.id)))
        row = db.session.scalar(select(ProcessedWebhook).where(ProcessedWebhook.type == "invoice.paid"))
        raw, attempts = row.payload.encode(), row.attempts
    # Stripe resends the same event (a manual "resend" in its dashboard): same id, fresh signature.
    import requests

    from billing.webhooks.signature import header_for

    response = requests.post(webhook_pipeline.url + "/webhooks/kernel/stripe", data=raw, timeout=10,
                             headers={"Stripe-Signature": header_for(webhook_pipeline.secret, raw),
                                      "Content-Type": "application/json"})
    assert response.status_code == 200
    webhook_pipeline.wait()
    with app.app_context():
        assert db.session.scalar(select(func.count(ProcessedWebhook.id))) == before
        again = db.session.scalar(select(ProcessedWebhook).where(ProcessedWebhook.type == "invoice.paid"))
        assert again.attempts == attempts and again.status == WebhookStatus.PROCESSED

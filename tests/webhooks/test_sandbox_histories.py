"""Handlers on the sandbox's real events: a subscription's whole history, in order and backwards."""
from datetime import timedelta

from sqlalchemy import select

from billing.checkout import complete_checkout
from billing.models import (Alert, App, AppSubscription, KernelCheckoutSession, KernelInvoice, KernelPayment,
                            KernelPaymentAttempt, KernelRefund, OutboxMessage, ProcessedWebhook)
from billing.money import Money
from billing.plans import plan_by_code
from billing.states import SubscriptionStatus
from billing.audit import Origin
from portal.extensions import db
from portal.payments import gateway
from tests.helpers.clients import pay_hosted_checkout
from tests.helpers.data import audit_actions_of_event
from tests.webhooks.helpers import post
from tests.webhooks.sandbox_events import emitted_events, subscribe


def _deliver(client, events):
    for payload in events:
        assert post(client, payload).status_code == 200


def _statuses(app) -> dict[str, int]:
    with app.app_context():
        rows = db.session.scalars(select(ProcessedWebhook)).all()
        summary: dict[str, int] = {}
        for row in rows:
            summary[row.status.value] = summary.get(row.status.value, 0) + 1
        return summary


def test_a_paid_subscription_s_history_applies_in_order(billing_app, sandbox, client, tenant):
    sub_id = subscribe(billing_app, tenant.id)
    events = emitted_events(sandbox.url)
    _deliver(client, events)
    with billing_app.app_context():
        row = db.session.scalar(select(AppSubscription))
        assert (row.stripe_subscription_id, row.status, row.plan.code, row.card_last4) == (
            sub_id, SubscriptionStatus.ACTIVE, "pro", "4242")
        invoice = db.session.scalar(select(KernelInvoice))
        assert (invoice.status, invoice.amount_paid, invoice.subscription_id) == ("paid", 9900, row.id)
        payment = db.session.scalar(select(KernelPayment))
        assert (payment.amount, payment.status, payment.invoice_id, payment.currency) == (
            9900, "succeeded", invoice.id, "BRL")
    assert "failed" not in _statuses(billing_app)
    succeeded = next(e for e in events if e["type"] == "payment_intent.succeeded")
    paid = next(e for e in events if e["type"] == "invoice.paid")
    assert audit_actions_of_event(billing_app, succeeded["id"]) == ["payment.recorded"]
    # Every event of this history has the same second: each invoice event further along than the row
    # (draft -> open -> paid) is applied as it says, without asking Stripe; invoice.paid moves it to paid
    # and links the payment to it.
    assert audit_actions_of_event(billing_app, paid["id"]) == ["invoice.updated", "payment.updated"]


def test_the_same_history_delivered_backwards_ends_in_the_same_state(billing_app, sandbox, client, tenant):
    sub_id = subscribe(billing_app, tenant.id)
    _deliver(client, reversed(emitted_events(sandbox.url)))
    with billing_app.app_context():
        row = db.session.scalar(select(AppSubscription))
        assert (row.stripe_subscription_id, row.status, row.card_last4) == (sub_id, SubscriptionStatus.ACTIVE, "4242")
        assert db.session.scalar(select(KernelInvoice.status)) == "paid"
        assert db.session.scalar(select(KernelPayment.invoice_id)) is not None
    assert "failed" not in _statuses(billing_app)


def test_a_failed_renewal_opens_dunning(billing_app, sandbox, client, tenant, owner):
    sub_id = subscribe(billing_app, tenant.id)
    with billing_app.app_context():
        customer = db.session.get(App, tenant.id).stripe_customer_id
        failing = gateway().attach_payment_method(customer, "pm_card_chargeCustomerFail")
        gateway().set_default_payment_method(customer, failing.payment_method_id, subscription_id=sub_id)
        period_end = gateway().retrieve_subscription(sub_id).current_period_end
    sandbox.advance(to=int((period_end + timedelta(hours=1)).timestamp()))
    events = emitted_events(sandbox.url)
    failed = next(e for e in events if e["type"] == "invoice.payment_failed")
    _deliver(client, events)

    with billing_app.app_context():
        subscription = db.session.scalar(select(AppSubscription))
        assert subscription.status == SubscriptionStatus.PAST_DUE
        renewal = db.session.scalar(select(KernelInvoice).where(KernelInvoice.stripe_invoice_id ==
                                                                 failed["data"]["object"]["id"]))
        assert renewal.status == "open"
        attempt = db.session.scalar(select(KernelPaymentAttempt))
        assert (attempt.invoice_id, attempt.attempt_number, attempt.failure_code) == (
            renewal.id, 0, "generic_decline")
        assert db.session.scalar(select(Alert.kind).where(Alert.kind == "payment_failed")) == "payment_failed"
        assert db.session.scalar(select(OutboxMessage.to_email)) == owner.email
    assert "dunning.opened" in audit_actions_of_event(billing_app, failed["id"])
    # delivered again (Stripe retries): nothing new
    _deliver(client, [dict(failed, id=failed["id"] + "x")])
    with billing_app.app_context():
        assert len(db.session.scalars(select(KernelPaymentAttempt)).all()) == 1


def test_checkout_completed_by_the_webhook_before_the_redirect(billing_app, sandbox, client, tenant):
    with billing_app.app_context():
        tenant_row = db.session.get(App, tenant.id)
        tenant_row.stripe_customer_id = gateway().create_customer(app_id=tenant.id, email=None, name="Acme").id
        plan = plan_by_code(db.session, "pro")
        remote = gateway().create_subscription_checkout(
            customer_id=tenant_row.stripe_customer_id, price_id=plan.stripe_price_id, app_id=tenant.id,
            plan_code="pro", success_url="http://portal.test/s?session_id={CHECKOUT_SESSION_ID}",
            cancel_url="http://portal.test/c", attempt="a1")
        db.session.add(KernelCheckoutSession(app_id=tenant.id, stripe_session_id=remote.id, mode="subscription",
                                             url=remote.url, plan=plan))
        db.session.commit()
    pay_hosted_checkout(remote.url)
    completed = emitted_events(sandbox.url, {"checkout.session.completed"})
    _deliver(client, completed)  # only this event: it alone must create what the app needs

    with billing_app.app_context():
        local = db.session.scalar(select(KernelCheckoutSession))
        assert local.status.value == "complete"
        subscription = db.session.scalar(select(AppSubscription))
        assert subscription.status == SubscriptionStatus.ACTIVE and subscription.plan.code == "pro"
        assert db.session.scalar(select(KernelInvoice.status)) == "paid"
        # the owner's browser comes back afterwards: found done, nothing applied twice
        again = complete_checkout(db.session, gateway(), remote.id, origin=Origin(actor="user"), app_id=tenant.id)
        assert again.is_complete and not again.newly_completed
    assert "checkout.subscription.completed" in audit_actions_of_event(billing_app, completed[0]["id"])


def test_a_refund_reaches_kernel_refunds(billing_app, sandbox, client, tenant):
    subscribe(billing_app, tenant.id)
    _deliver(client, emitted_events(sandbox.url))
    with billing_app.app_context():
        intent = db.session.scalar(select(KernelPayment.stripe_payment_intent_id))
        gateway().create_refund(payment_intent_id=intent, reference="ticket-7", amount=Money(2500, "BRL"))
    refunded = emitted_events(sandbox.url, {"charge.refunded"})
    _deliver(client, refunded)
    with billing_app.app_context():
        assert db.session.scalar(select(KernelPayment.amount_refunded)) == 2500
        assert db.session.scalar(select(KernelRefund.amount)) == 2500

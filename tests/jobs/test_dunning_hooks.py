"""Dunning ends as soon as Stripe says so: the invoice.paid webhook settles it, a new subscription unpauses the app."""
from __future__ import annotations

import json

from sqlalchemy import select

from billing.checkout import complete_checkout
from billing.models import App, AppStatus, KernelCheckoutSession, KernelInvoice, OutboxMessage
from billing.plans import plan_by_code
from billing.audit import Origin
from billing.webhooks.signature import header_for
from portal.extensions import db
from portal.payments import gateway
from tests.helpers.clients import pay_hosted_checkout
from tests.webhooks.sandbox_events import emitted_events


def _deliver(app, client, event: dict) -> int:
    raw = json.dumps(event).encode()
    secret = app.config["STRIPE_KERNEL_WEBHOOK_SECRETS"][0]
    response = client.post("/webhooks/kernel/stripe", data=raw,
                           headers={"Stripe-Signature": header_for(secret, raw), "Content-Type": "application/json"})
    return response.status_code


def test_an_invoice_paid_in_stripe_ends_dunning_when_its_webhook_arrives(billing_app, sandbox, dunning):
    with billing_app.app_context():
        good = gateway().attach_payment_method(dunning.customer_id, "pm_card_visa")
        gateway().pay_invoice(dunning.invoice_id, attempt="paid-in-stripe", payment_method_id=good.payment_method_id)
    paid_event = [e for e in emitted_events(sandbox.url, {"invoice.paid"})
                  if e["data"]["object"]["id"] == dunning.invoice_id][-1]

    assert _deliver(billing_app, billing_app.test_client(), paid_event) == 200  # RQ_ASYNC off: processed inline

    with billing_app.app_context():
        invoice = db.session.scalar(select(KernelInvoice).where(KernelInvoice.stripe_invoice_id == dunning.invoice_id))
        assert invoice.status == "paid" and invoice.dunning_outcome == "paid"
        assert db.session.get(App, dunning.app_id).current_subscription.status.value == "active"
        kinds = set(db.session.scalars(select(OutboxMessage.kind)))
        assert "dunning.recovered" in kinds


def test_a_paused_app_that_subscribes_again_runs_again_at_once(billing_app, tenant):
    with billing_app.app_context():
        app_row = db.session.get(App, tenant.id)
        app_row.status, app_row.paused_reason = AppStatus.PAUSED, "unpaid invoice"
        customer = gateway().create_customer(app_id=tenant.id, email=None, name=app_row.name)
        app_row.stripe_customer_id = customer.id
        remote = gateway().create_subscription_checkout(
            customer_id=customer.id, price_id=plan_by_code(db.session, "pro").stripe_price_id, app_id=tenant.id,
            plan_code="pro", success_url="http://portal.test/s?session_id={CHECKOUT_SESSION_ID}",
            cancel_url="http://portal.test/c", attempt="again")
        db.session.add(KernelCheckoutSession(app_id=tenant.id, stripe_session_id=remote.id, mode="subscription",
                                             url=remote.url))
        db.session.commit()
    pay_hosted_checkout(remote.url)

    with billing_app.app_context():
        complete_checkout(db.session, gateway(), remote.id, origin=Origin(actor="user"), app_id=tenant.id)
        db.session.commit()
        app_row = db.session.get(App, tenant.id)
        assert app_row.status == AppStatus.ACTIVE and app_row.paused_reason is None

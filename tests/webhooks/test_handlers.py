"""Each handler on hand-built payloads (shaped like the sandbox's): effects, ordering rules, audit rows."""
import typing

import pytest
from sqlalchemy import select

from billing.models import (Alert, AppSubscription, AuditLog, KernelInvoice, KernelPayment, KernelRefund,
                            WebhookStatus)
from billing.states import SubscriptionStatus
from billing.webhooks import handlers
from portal.extensions import db
from tests.helpers.data import audit_actions_of_event, count, webhook_row
from tests.webhooks.helpers import (PERIOD_END, PERIOD_START, PresentStripe, charge, event, invoice,
                                    payment_intent, post, subscription)

T0 = PERIOD_START + 100


def _subscription_row(app, sub_id="sub_test") -> AppSubscription:
    with app.app_context():
        row = db.session.scalar(select(AppSubscription).where(AppSubscription.stripe_subscription_id == sub_id))
        return row and (row.status, row.plan.code, row.cancel_at_period_end, row.current_period_end.timestamp(),
                        row.stripe_watermark)


# ---------------------------------------------------------------- the table

def test_registering_a_handler_for_an_unknown_event_type_fails_at_once():
    with pytest.raises(ValueError, match="invoice.payed"):
        handlers.handles("invoice.payed")(lambda ctx: handlers.Handled.DONE)


def test_an_event_type_cannot_get_two_handlers():
    with pytest.raises(ValueError, match="already has a handler"):
        handlers.handles("invoice.paid")(lambda ctx: handlers.Handled.DONE)


def test_every_known_event_type_is_one_stripe_sends():
    from stripe.params._webhook_endpoint_create_params import WebhookEndpointCreateParams

    literal = typing.get_args(WebhookEndpointCreateParams.__annotations__["enabled_events"])[0]
    stripe_types = set(typing.get_args(literal))
    assert handlers.KNOWN_EVENT_TYPES <= stripe_types, handlers.KNOWN_EVENT_TYPES - stripe_types


def test_the_issue_s_event_types_all_have_handlers():
    required = {"checkout.session.completed", "customer.subscription.created", "customer.subscription.updated",
                "customer.subscription.deleted", "invoice.paid", "invoice.payment_failed", "invoice.finalized",
                "payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded"}
    assert required <= set(handlers.HANDLERS)


# ---------------------------------------------------------------- subscriptions

def test_subscription_rows_follow_stripe(app, client, acme):
    created = event("customer.subscription.created", subscription(status="incomplete"), created=T0)
    post(client, created)
    assert _subscription_row(app)[:3] == (SubscriptionStatus.INCOMPLETE, "pro", False)

    active = event("customer.subscription.updated", subscription(status="active"), created=T0 + 1,
                   previous={"status": "incomplete"})
    post(client, active)
    upgraded = event("customer.subscription.updated",
                     subscription(price="price_ent", amount=49900, cancel_at_period_end=True,
                                  period_end=PERIOD_END + 86400), created=T0 + 2)
    post(client, upgraded)
    status, plan, cancel_at_end, period_end, watermark = _subscription_row(app)
    assert (status, plan, cancel_at_end, period_end, watermark) == (
        SubscriptionStatus.ACTIVE, "enterprise", True, PERIOD_END + 86400, T0 + 2)

    deleted = event("customer.subscription.deleted", subscription(status="canceled", price="price_ent"),
                    created=T0 + 3)
    post(client, deleted)
    assert _subscription_row(app)[0] == SubscriptionStatus.CANCELED
    for payload in (created, active, upgraded, deleted):
        assert webhook_row(app, payload["id"]).status == WebhookStatus.PROCESSED
    assert audit_actions_of_event(app, upgraded["id"]) == ["subscription.updated"]
    assert audit_actions_of_event(app, deleted["id"]) == ["subscription.updated"]


def test_an_older_event_never_overwrites_newer_state(app, client, acme):
    post(client, event("customer.subscription.updated", subscription(status="past_due"), created=T0 + 10))
    late = event("customer.subscription.updated", subscription(status="active"), created=T0)
    post(client, late)
    assert _subscription_row(app)[0] == SubscriptionStatus.PAST_DUE and _subscription_row(app)[4] == T0 + 10
    row = webhook_row(app, late["id"])
    assert row.status == WebhookStatus.PROCESSED and audit_actions_of_event(app, late["id"]) == []


def test_when_events_in_between_are_late_stripe_s_present_state_is_reached_by_legal_steps(app, client, acme):
    post(client, event("customer.subscription.created", subscription(status="incomplete"), created=T0))
    app.extensions["billing_gateway"] = PresentStripe(subscription(status="past_due"))
    # The renewal failure arrives before the first payment's "active" (still being retried by Stripe).
    past_due = event("customer.subscription.updated", subscription(status="past_due"), created=T0 + 3600)
    post(client, past_due)
    assert _subscription_row(app)[0] == SubscriptionStatus.PAST_DUE
    assert audit_actions_of_event(app, past_due["id"]) == ["subscription.status_inferred", "subscription.updated"]
    with app.app_context():
        inferred = db.session.scalar(select(AuditLog).where(AuditLog.action == "subscription.status_inferred"))
        assert (inferred.before, inferred.after) == ({"status": "incomplete"}, {"status": "active"})
    late_active = event("customer.subscription.updated", subscription(status="active"), created=T0 + 1)
    post(client, late_active)
    assert _subscription_row(app)[0] == SubscriptionStatus.PAST_DUE  # older: ignored


def test_a_canceled_subscription_never_comes_back_whatever_arrives(app, client, acme):
    post(client, event("customer.subscription.deleted", subscription(status="canceled"), created=T0))
    app.extensions["billing_gateway"] = PresentStripe(subscription(status="active"))  # a corrupt answer
    revived = event("customer.subscription.updated", subscription(status="active"), created=T0 + 5)
    post(client, revived)
    row = webhook_row(app, revived["id"])
    assert row.status == WebhookStatus.FAILED and "IllegalTransition" in row.last_error
    assert _subscription_row(app)[0] == SubscriptionStatus.CANCELED


def test_a_price_we_do_not_sell_fails_the_event_without_retry_and_raises_an_alert(app, client, acme):
    payload = event("customer.subscription.created", subscription(price="price_made_by_hand"))
    assert post(client, payload).status_code == 200
    row = webhook_row(app, payload["id"])
    assert row.status == WebhookStatus.FAILED and row.attempts == 1 and "price_made_by_hand" in row.last_error
    assert count(app, AppSubscription) == 0
    with app.app_context():
        alert = db.session.scalar(select(Alert).where(Alert.dedupe_key == f"webhook_failed:{payload['id']}"))
        assert alert.kind == "webhook_failed" and alert.resolved_at is None


# ---------------------------------------------------------------- invoices

def test_invoice_finalized_creates_the_invoice_row(app, client, acme):
    post(client, event("customer.subscription.created", subscription(), created=T0))
    payload = event("invoice.finalized", invoice(status="open", created=T0), created=T0 + 1)
    post(client, payload)
    with app.app_context():
        row = db.session.scalar(select(KernelInvoice))
        assert (row.stripe_invoice_id, row.status, row.amount_due, row.currency, row.number) == (
            "in_test", "open", 9900, "BRL", "ACME-0001")
        assert row.subscription.stripe_subscription_id == "sub_test"
    assert audit_actions_of_event(app, payload["id"]) == ["invoice.created"]


def test_a_late_invoice_finalized_does_not_reopen_a_paid_invoice(app, client, acme):
    post(client, event("invoice.updated", invoice(status="paid", amount_paid=9900), created=T0 + 5))
    post(client, event("invoice.finalized", invoice(status="open"), created=T0 + 1))
    with app.app_context():
        assert db.session.scalar(select(KernelInvoice.status)) == "paid"


def test_events_about_other_customers_invoices_are_ignored(app, client, acme):
    payload = event("invoice.finalized", invoice(customer="cus_other"))
    post(client, payload)
    assert webhook_row(app, payload["id"]).status == WebhookStatus.IGNORED
    assert count(app, KernelInvoice) == 0


# ---------------------------------------------------------------- payments and refunds

def test_payment_intent_succeeded_records_the_payment(app, client, acme):
    payload = event("payment_intent.succeeded", payment_intent(), created=T0)
    post(client, payload)
    post(client, event("payment_intent.succeeded", payment_intent(), created=T0))  # another delivery id, same PI
    with app.app_context():
        payment = db.session.scalar(select(KernelPayment))
        assert (payment.stripe_payment_intent_id, payment.amount, payment.currency, payment.status,
                payment.stripe_charge_id, payment.app_id) == ("pi_test", 9900, "BRL", "succeeded", "ch_test", acme.id)
        assert payment.paid_at is not None
    assert count(app, KernelPayment) == 1
    assert audit_actions_of_event(app, payload["id"]) == ["payment.recorded"]


def test_a_failed_payment_intent_is_recorded_and_alerted_once(app, client, acme):
    failed = payment_intent(pi_id="pi_fail", status="requires_payment_method", charge=None,
                            error_code="insufficient_funds")
    for _ in range(2):  # e.g. two attempts on the same PaymentIntent
        post(client, event("payment_intent.payment_failed", failed, created=T0))
    with app.app_context():
        alerts = db.session.scalars(select(Alert).where(Alert.kind == "payment_intent_failed")).all()
        assert len(alerts) == 1 and alerts[0].app_id == acme.id and "insufficient_funds" in alerts[0].message
        payment = db.session.scalar(select(KernelPayment))
        assert (payment.status, payment.failure_code, payment.amount) == (
            "requires_payment_method", "insufficient_funds", 9900)


def test_a_late_failure_never_turns_a_succeeded_payment_back(app, client, acme):
    post(client, event("payment_intent.succeeded", payment_intent(), created=T0 + 10))
    post(client, event("payment_intent.payment_failed",
                       payment_intent(status="requires_payment_method", error_code="card_declined"), created=T0))
    with app.app_context():
        assert db.session.scalar(select(KernelPayment.status)) == "succeeded"


def test_refunds_are_recorded_whatever_the_order(app, client, acme):
    post(client, event("payment_intent.succeeded", payment_intent(), created=T0))
    full = event("charge.refunded", charge(refunds=(("re_2", 4900), ("re_1", 5000))), created=T0 + 20)
    partial = event("charge.refunded", charge(refunds=(("re_1", 5000),)), created=T0 + 10)
    post(client, full)
    post(client, partial)  # arrives last, knows less
    with app.app_context():
        refunds = db.session.scalars(select(KernelRefund).order_by(KernelRefund.stripe_refund_id)).all()
        assert [(r.stripe_refund_id, r.amount, r.currency, r.status) for r in refunds] == [
            ("re_1", 5000, "BRL", "succeeded"), ("re_2", 4900, "BRL", "succeeded")]
        payment = db.session.scalar(select(KernelPayment))
        assert payment.amount_refunded == 9900 and {r.payment_id for r in refunds} == {payment.id}
    assert audit_actions_of_event(app, full["id"]) == ["refund.recorded", "refund.recorded", "payment.refunded"]
    assert audit_actions_of_event(app, partial["id"]) == []


def test_a_refund_of_a_payment_we_had_not_heard_of_creates_it(app, client, acme):
    post(client, event("charge.refunded", charge(charge_id="ch_new", pi_id="pi_new", amount=3000,
                                                 refunds=(("re_9", 1000),))))
    with app.app_context():
        payment = db.session.scalar(select(KernelPayment))
        assert (payment.stripe_payment_intent_id, payment.amount, payment.amount_refunded, payment.status) == (
            "pi_new", 3000, 1000, "succeeded")
        assert db.session.scalar(select(KernelRefund.amount)) == 1000

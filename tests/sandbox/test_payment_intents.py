"""PaymentIntents (manual capture, cancel) and refunds."""

from __future__ import annotations

import pytest
import stripe

from . import helpers


def authorize(client, amount=10000):
    cus = helpers.customer(client)
    return client.v1.payment_intents.create({
        "amount": amount, "currency": "brl", "customer": cus.id,
        "payment_method": cus.invoice_settings.default_payment_method, "capture_method": "manual",
        "confirm": True})


def test_manual_capture_partial(stripe_client):
    pi = authorize(stripe_client)
    assert pi.status == "requires_capture" and pi.amount_capturable == 10000
    assert stripe_client.v1.charges.retrieve(pi.latest_charge).captured is False
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 10001})
    captured = stripe_client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 6000})
    assert captured.status == "succeeded" and captured.amount_received == 6000
    ch = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert ch.captured and ch.amount_captured == 6000
    types = helpers.event_types(stripe_client)
    assert types.index("payment_intent.amount_capturable_updated") < types.index("charge.captured") \
        < types.index("payment_intent.succeeded")


def test_cancel_authorized_intent(stripe_client):
    pi = authorize(stripe_client)
    canceled = stripe_client.v1.payment_intents.cancel(pi.id, {"cancellation_reason": "requested_by_customer"})
    assert canceled.status == "canceled" and canceled.cancellation_reason == "requested_by_customer"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe_client.v1.payment_intents.capture(pi.id)
    assert raised.value.code == "payment_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_intents.cancel(pi.id)


def test_confirm_later_and_cancel_unconfirmed(stripe_client):
    pi = stripe_client.v1.payment_intents.create({"amount": 2000, "currency": "brl"})
    assert pi.status == "requires_payment_method"
    pi = stripe_client.v1.payment_intents.update(pi.id, {"payment_method": "pm_card_visa"})
    assert pi.status == "requires_confirmation"
    pi = stripe_client.v1.payment_intents.confirm(pi.id)
    assert pi.status == "succeeded"
    other = stripe_client.v1.payment_intents.create({"amount": 2000, "currency": "brl"})
    assert stripe_client.v1.payment_intents.cancel(other.id).status == "canceled"


def test_refunds_never_exceed_what_was_captured(stripe_client):
    pi = authorize(stripe_client)
    stripe_client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 7000})
    first = stripe_client.v1.refunds.create({"payment_intent": pi.id, "amount": 3000})
    assert first.status == "succeeded" and first.amount == 3000
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        stripe_client.v1.refunds.create({"charge": pi.latest_charge, "amount": 4001})
    assert too_much.value.param == "amount"
    rest = stripe_client.v1.refunds.create({"payment_intent": pi.id})
    assert rest.amount == 4000
    ch = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert ch.amount_refunded == 7000 and ch.refunded is True
    assert [r.id for r in ch.refunds.data] == [rest.id, first.id]
    with pytest.raises(stripe.InvalidRequestError) as nothing_left:
        stripe_client.v1.refunds.create({"charge": pi.latest_charge, "amount": 1})
    assert nothing_left.value.code == "charge_already_refunded"
    assert [r.id for r in stripe_client.v1.refunds.list({"charge": ch.id}).data] == [rest.id, first.id]
    types = helpers.event_types(stripe_client)
    assert types[-2:] == ["charge.refunded", "refund.created"]


def test_refund_of_uncaptured_charge_is_refused(stripe_client):
    pi = authorize(stripe_client)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.refunds.create({"payment_intent": pi.id})


def test_amounts_must_be_integers(sandbox):
    response = helpers.raw(sandbox, "POST", "/v1/payment_intents", data={"amount": "10.5", "currency": "brl"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parameter_invalid_integer"


def test_charges_list_by_payment_intent(stripe_client):
    pi = authorize(stripe_client)
    listed = stripe_client.v1.charges.list({"payment_intent": pi.id})
    assert [c.id for c in listed.data] == [pi.latest_charge]

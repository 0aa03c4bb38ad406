"""Test cards and PaymentMethods, seen through the SDK's exceptions."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
import stripe

from . import helpers


def card(client, number, exp_year=2035, cvc="123"):
    return client.v1.payment_methods.create({"type": "card", "card": {
        "number": number, "exp_month": 12, "exp_year": exp_year, "cvc": cvc}})


def charge(client, customer, pm, amount=5000, **extra):
    params = {"amount": amount, "currency": "brl", "customer": customer, "payment_method": pm, "confirm": True}
    params.update(extra)
    return client.v1.payment_intents.create(params)


@pytest.mark.parametrize("number,brand,last4", [
    ("4242424242424242", "visa", "4242"), ("5555555555554444", "mastercard", "4444"),
])
def test_good_cards_attach_and_charge(stripe_client, number, brand, last4):
    pm = card(stripe_client, number)
    assert (pm.card.brand, pm.card.last4, pm.card.exp_month) == (brand, last4, 12)
    assert pm.card.fingerprint and pm.card.funding == "credit" and pm.card.country == "US"
    cus = stripe_client.v1.customers.create({})
    stripe_client.v1.payment_methods.attach(pm.id, {"customer": cus.id})
    pi = charge(stripe_client, cus.id, pm.id)
    assert pi.status == "succeeded" and pi.amount_received == 5000
    ch = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert ch.payment_method_details.card.brand == brand and ch.payment_method_details.card.last4 == last4
    assert ch.captured and ch.amount_captured == 5000 and ch.status == "succeeded"


@pytest.mark.parametrize("number,decline_code,message", [
    ("4000000000000002", "generic_decline", "Your card was declined."),
    ("4000000000009995", "insufficient_funds", "Your card has insufficient funds."),
])
def test_declining_cards_fail_on_attach_with_card_error(stripe_client, number, decline_code, message):
    pm = card(stripe_client, number)
    cus = stripe_client.v1.customers.create({})
    with pytest.raises(stripe.CardError) as raised:
        stripe_client.v1.payment_methods.attach(pm.id, {"customer": cus.id})
    assert raised.value.http_status == 402
    assert raised.value.code == "card_declined"
    assert raised.value.error.decline_code == decline_code
    assert raised.value.user_message == message
    assert stripe_client.v1.payment_methods.retrieve(pm.id).customer is None


@pytest.mark.parametrize("number,decline_code", [
    ("4000000000000002", "generic_decline"), ("4000000000009995", "insufficient_funds"),
    ("4000000000000341", "generic_decline"),
])
def test_declining_cards_fail_when_charged(stripe_client, number, decline_code):
    pm = card(stripe_client, number)
    with pytest.raises(stripe.CardError) as raised:
        stripe_client.v1.payment_intents.create({"amount": 5000, "currency": "brl", "payment_method": pm.id,
                                                 "confirm": True})
    assert raised.value.code == "card_declined" and raised.value.error.decline_code == decline_code
    pi = stripe_client.v1.payment_intents.retrieve(raised.value.error.payment_intent.id)
    assert pi.status == "requires_payment_method"
    assert pi.last_payment_error.decline_code == decline_code
    failed = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert failed.status == "failed" and failed.outcome.reason == decline_code and not failed.paid


def test_charge_customer_fail_card_attaches_then_fails(stripe_client):
    cus = stripe_client.v1.customers.create({})
    pm = stripe_client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": cus.id})
    assert pm.id.startswith("pm_") and pm.id != "pm_card_chargeCustomerFail"
    assert pm.customer == cus.id and pm.card.last4 == "0341"
    with pytest.raises(stripe.CardError) as raised:
        charge(stripe_client, cus.id, pm.id, off_session=True)
    assert raised.value.error.decline_code == "generic_decline"


def test_authentication_required_card(stripe_client):
    cus = stripe_client.v1.customers.create({})
    pm = stripe_client.v1.payment_methods.attach("pm_card_authenticationRequired", {"customer": cus.id})
    assert pm.card.last4 == "3155"
    with pytest.raises(stripe.CardError) as raised:
        charge(stripe_client, cus.id, pm.id, off_session=True)
    assert raised.value.http_status == 402 and raised.value.code == "authentication_required"
    on_session = charge(stripe_client, cus.id, pm.id)
    assert on_session.status == "requires_action" and on_session.next_action.type == "use_stripe_sdk"


@pytest.mark.parametrize("magic,last4,brand", [
    ("pm_card_visa", "4242", "visa"), ("pm_card_mastercard", "4444", "mastercard"),
])
def test_magic_ids_become_real_payment_methods(stripe_client, magic, last4, brand):
    cus = stripe_client.v1.customers.create({})
    pm = stripe_client.v1.payment_methods.attach(magic, {"customer": cus.id})
    assert pm.id.startswith("pm_") and pm.id != magic
    assert (pm.card.last4, pm.card.brand) == (last4, brand)
    listed = stripe_client.v1.customers.payment_methods.list(cus.id)
    assert [p.id for p in listed.data] == [pm.id]
    assert [p.id for p in stripe_client.v1.payment_methods.list({"customer": cus.id}).data] == [pm.id]


@pytest.mark.parametrize("magic,decline_code", [
    ("pm_card_chargeDeclined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
])
def test_magic_declining_ids_fail_on_attach(stripe_client, magic, decline_code):
    cus = stripe_client.v1.customers.create({})
    with pytest.raises(stripe.CardError) as raised:
        stripe_client.v1.payment_methods.attach(magic, {"customer": cus.id})
    assert raised.value.error.decline_code == decline_code


def test_detach_clears_customer_default(stripe_client):
    cus = helpers.customer(stripe_client)
    pm_id = cus.invoice_settings.default_payment_method
    stripe_client.v1.payment_methods.detach(pm_id)
    assert stripe_client.v1.customers.retrieve(cus.id).invoice_settings.default_payment_method is None
    assert stripe_client.v1.payment_methods.retrieve(pm_id).customer is None


@pytest.mark.parametrize("number,exp_year,cvc,code", [
    ("4242424242424241", 2035, "123", "incorrect_number"),
    ("4242424242424242", 2001, "123", "invalid_expiry_year"),
    ("4242424242424242", 2035, "12", "invalid_cvc"),
    ("4111111111111111", 2035, "123", "card_declined"),  # a real-world number: refused in test mode
])
def test_bad_card_input_is_a_card_error(stripe_client, number, exp_year, cvc, code):
    with pytest.raises(stripe.CardError) as raised:
        card(stripe_client, number, exp_year=exp_year, cvc=cvc)
    assert raised.value.code == code


def test_numbers_and_cvcs_are_never_stored_or_returned(sandbox, stripe_client):
    pm = card(stripe_client, "5555555555554444", cvc="987")
    cus = stripe_client.v1.customers.create({"payment_method": pm.id})
    pi = charge(stripe_client, cus.id, pm.id)
    body = json.dumps([pm.to_dict(), pi.to_dict(), helpers.events(stripe_client)])
    # The CVC as a value of its own: "987" also occurs inside timestamps and ids, which is no leak.
    assert "5555555555554444" not in body and not re.search(r'(?<![0-9A-Za-z])987(?![0-9A-Za-z])', body)
    with sqlite3.connect(sandbox.db_path) as db:
        for table, in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for row in db.execute(f"SELECT * FROM {table}"):
                assert "5555555555554444" not in repr(row), table
                assert "555555555555" not in repr(row), table

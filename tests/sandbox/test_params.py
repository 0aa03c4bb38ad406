"""Decoding of Stripe's bracket-notation parameters and typed access."""

from __future__ import annotations

import pytest
import stripe

from sandbox.errors import InvalidRequest
from sandbox.params import Params, decode_pairs

from . import helpers


def test_nested_dicts_lists_and_appends():
    decoded = decode_pairs([
        ("items[0][price]", "price_a"), ("items[1][price]", "price_b"), ("items[1][quantity]", "2"),
        ("metadata[app_id]", "3"), ("expand[]", "subscription"), ("expand[]", "customer"),
        ("subscription_details[items][0][price]", "price_c"), ("email", "a@b.c"),
    ])
    assert decoded == {
        "items": [{"price": "price_a"}, {"price": "price_b", "quantity": "2"}],
        "metadata": {"app_id": "3"},
        "expand": ["subscription", "customer"],
        "subscription_details": {"items": [{"price": "price_c"}]},
        "email": "a@b.c",
    }


def test_indexes_sort_numerically_not_as_text():
    pairs = [(f"items[{i}][price]", f"p{i}") for i in (10, 2, 0, 1, 3, 4, 5, 6, 7, 8, 9)]
    assert [item["price"] for item in decode_pairs(pairs)["items"]] == [f"p{i}" for i in range(11)]


def test_integers_booleans_and_errors():
    params = Params({"amount": "9900", "flag": "true", "off": "false", "bad": "12x"})
    assert params.int("amount") == 9900
    assert params.bool("flag") is True and params.bool("off") is False
    with pytest.raises(InvalidRequest) as missing:
        params.int("limit_missing", required=True)
    assert missing.value.code == "parameter_missing"
    with pytest.raises(InvalidRequest) as invalid:
        params.int("bad")
    assert invalid.value.code == "parameter_invalid_integer" and invalid.value.param == "bad"


def test_metadata_merge_and_unset():
    params = Params({"metadata": {"keep": "1", "drop": ""}})
    assert params.metadata({"drop": "x", "old": "y"}) == {"old": "y", "keep": "1"}
    assert Params({"metadata": ""}).metadata({"old": "y"}) == {}


def test_sdk_encoding_round_trips_through_the_server(stripe_client):
    """What the SDK encodes (nested lists, metadata, integers) comes back as typed values."""
    product = stripe_client.v1.products.create({"name": "Pro", "metadata": {"app_id": "3", "tier": "pro"}})
    price = stripe_client.v1.prices.create({"product": product.id, "unit_amount": 9900, "currency": "BRL",
                                            "recurring": {"interval": "month", "interval_count": 1},
                                            "lookup_key": "pro_monthly"})
    assert price.unit_amount == 9900 and isinstance(price.unit_amount, int)
    assert price.currency == "brl"
    assert price.recurring.interval == "month" and price.recurring.interval_count == 1
    assert product.metadata.to_dict() == {"app_id": "3", "tier": "pro"}
    listed = stripe_client.v1.prices.list({"lookup_keys": ["pro_monthly"], "expand": ["data.product"]})
    assert [p.id for p in listed.data] == [price.id]
    assert listed.data[0].product.name == "Pro"


def test_bracket_notation_over_the_wire(sandbox):
    """``expand[]`` and a string integer decode the way Stripe's docs write them."""
    response = helpers.raw(sandbox, "POST", "/v1/products", data={"name": "Raw", "metadata[a]": "1"})
    product = response.json()
    response = helpers.raw(sandbox, "POST", "/v1/prices", data={
        "product": product["id"], "unit_amount": "500", "currency": "brl", "recurring[interval]": "month"})
    assert response.status_code == 200, response.text
    assert response.json()["unit_amount"] == 500
    bad = helpers.raw(sandbox, "POST", "/v1/prices", data={
        "product": product["id"], "unit_amount": "5.00", "currency": "brl"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "parameter_invalid_integer"
    assert bad.json()["error"]["param"] == "unit_amount"
    expanded = helpers.raw(sandbox, "GET", "/v1/prices?expand[]=data.product&limit=1")
    assert expanded.json()["data"][0]["product"]["name"] == "Raw"


def test_a_parameter_stripe_takes_but_the_sandbox_does_not_is_refused_naming_the_sandbox(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.customers.create({"tax_exempt": "exempt"})
    assert refused.value.param == "tax_exempt" and "Stripe sandbox does not support" in str(refused.value)
    assert stripe_client.v1.customers.list().data == []  # nothing was made
    with pytest.raises(stripe.InvalidRequestError, match="sandbox does not support ui_mode"):
        stripe_client.v1.checkout.sessions.create({"mode": "setup", "currency": "brl", "ui_mode": "embedded_page",
                                                   "success_url": "https://portal.test/r"})
    with pytest.raises(stripe.InvalidRequestError, match="payment_method_types"):
        stripe_client.v1.payment_intents.create({"amount": 100, "currency": "brl",
                                                 "payment_method_types": ["boleto"]})
    cards = stripe_client.v1.payment_intents.create({"amount": 100, "currency": "brl",
                                                     "payment_method_types": ["card"]})
    assert cards.payment_method_types == ["card"]


def test_an_enum_value_stripe_does_not_have_is_refused_without_a_null_code(sandbox):
    answer = helpers.raw(sandbox, "POST", "/v1/checkout/sessions", data={"mode": "sometimes"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == "mode" and None not in error.values() and "code" not in error

"""Price changes: the three proration behaviours, the reference case, and preview == charge."""

from __future__ import annotations

from fractions import Fraction

import pytest
import stripe
from hypothesis import HealthCheck, given, settings, strategies as st

from sandbox.proration import prorate, proration_pair

from . import helpers
from .helpers import DAY


def _round_half_away(value: Fraction) -> int:
    magnitude = abs(value)
    whole = int(magnitude)
    if magnitude - whole >= Fraction(1, 2):
        whole += 1
    return whole if value >= 0 else -whole


@given(amount=st.integers(-10**9, 10**9), length=st.integers(1, 400 * DAY), data=st.data())
def test_prorate_rounds_half_away_from_zero_exactly(amount, length, data):
    remaining = data.draw(st.integers(0, length))
    assert prorate(amount, remaining, length) == _round_half_away(Fraction(amount * remaining, length))


def test_reference_pair():
    assert proration_pair(9900, 49900, 0, 30 * DAY, 15 * DAY) == (-4950, 24950)


@pytest.fixture
def plans(stripe_client):
    return helpers.price(stripe_client, 9900, "Pro"), helpers.price(stripe_client, 49900, "Enterprise")


@pytest.fixture
def thirty_day_subscription(stripe_client, sandbox, plans):
    """Pro on a 30-day period, the clock moved to exactly its middle."""
    pro, _ = plans
    sandbox.advance(to=helpers.next_month_start_with_days(sandbox.now(), 30))
    cus = helpers.customer(stripe_client)
    sub = helpers.subscribe(stripe_client, cus.id, pro.id)
    start, end = helpers.period(sub)
    assert end - start == 30 * DAY
    middle = start + 15 * DAY
    sandbox.advance(to=middle)
    return sub, middle


def _upgrade(client, sub, price_id, **params):
    item = sub["items"].data[0].id
    body = {"items": [{"id": item, "price": price_id}], "expand": ["latest_invoice"]}
    body.update(params)
    return client.v1.subscriptions.update(sub.id, body)


def test_reference_case_always_invoice(stripe_client, thirty_day_subscription, plans):
    sub, middle = thirty_day_subscription
    _, enterprise = plans
    before = helpers.period(sub)
    updated = _upgrade(stripe_client, sub, enterprise.id, proration_behavior="always_invoice", proration_date=middle)
    inv = updated.latest_invoice
    assert inv.billing_reason == "subscription_update" and inv.status == "paid"
    lines = sorted((line.amount, line.description) for line in inv.lines.data)
    assert [amount for amount, _ in lines] == [-4950, 24950]
    assert lines[0][1].startswith("Unused time on Pro after")
    assert lines[1][1].startswith("Remaining time on Enterprise after")
    assert all(line.parent.subscription_item_details.proration for line in inv.lines.data)
    assert inv.amount_due == inv.amount_paid == 20000
    pi = stripe_client.v1.payment_intents.retrieve(inv.payments.data[0].payment.payment_intent)
    assert pi.amount_received == 20000
    # The period and the billing anchor do not move on a price change.
    assert helpers.period(updated) == before and updated.billing_cycle_anchor == sub.billing_cycle_anchor
    assert updated["items"].data[0].price.id == enterprise.id
    assert updated["items"].data[0].id == sub["items"].data[0].id
    changes = [e for e in helpers.events(stripe_client, "customer.subscription.updated")
               if "items" in e["data"]["previous_attributes"]]
    assert len(changes) == 1
    assert changes[0]["data"]["previous_attributes"]["items"]["data"][0]["price"]["id"] == plans[0].id
    assert changes[0]["data"]["object"]["items"]["data"][0]["price"]["id"] == enterprise.id


def test_preview_equals_the_charge(stripe_client, thirty_day_subscription, plans):
    sub, middle = thirty_day_subscription
    _, enterprise = plans
    events_before = len(helpers.events(stripe_client))
    preview = stripe_client.v1.invoices.create_preview({
        "customer": sub.customer, "subscription": sub.id,
        "subscription_details": {"items": [{"id": sub["items"].data[0].id, "price": enterprise.id}],
                                 "proration_date": middle, "proration_behavior": "always_invoice"}})
    assert preview.status == "draft" and preview.amount_due == 20000
    assert len(helpers.events(stripe_client)) == events_before  # no side effects
    assert len(stripe_client.v1.invoices.list({"subscription": sub.id}).data) == 1
    updated = _upgrade(stripe_client, sub, enterprise.id, proration_behavior="always_invoice", proration_date=middle)
    assert updated.latest_invoice.amount_paid == preview.amount_due
    assert sorted(line.amount for line in updated.latest_invoice.lines.data) == sorted(line.amount for line in preview.lines.data)


def test_create_prorations_go_on_the_next_invoice(stripe_client, sandbox, thirty_day_subscription, plans):
    sub, middle = thirty_day_subscription
    _, enterprise = plans
    preview = stripe_client.v1.invoices.create_preview({
        "customer": sub.customer, "subscription": sub.id,
        "subscription_details": {"items": [{"id": sub["items"].data[0].id, "price": enterprise.id}],
                                 "proration_date": middle}})
    updated = _upgrade(stripe_client, sub, enterprise.id, proration_date=middle)
    assert updated.latest_invoice.id == sub.latest_invoice  # nothing invoiced now
    pending = stripe_client.v1.invoice_items.list({"customer": sub.customer, "pending": True}).data
    assert sorted(ii.amount for ii in pending) == [-4950, 24950]
    sandbox.advance(to=helpers.period(sub)[1] + helpers.AFTER_RENEWAL)
    renewal = stripe_client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]}).latest_invoice
    assert renewal.billing_reason == "subscription_cycle"
    assert sorted(line.amount for line in renewal.lines.data) == [-4950, 24950, 49900]
    assert renewal.amount_paid == 69900 == preview.amount_due


def test_no_proration(stripe_client, sandbox, thirty_day_subscription, plans):
    sub, middle = thirty_day_subscription
    _, enterprise = plans
    _upgrade(stripe_client, sub, enterprise.id, proration_behavior="none")
    assert stripe_client.v1.invoice_items.list({"customer": sub.customer}).data == []
    sandbox.advance(to=helpers.period(sub)[1] + helpers.AFTER_RENEWAL)
    renewal = stripe_client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]}).latest_invoice
    assert [line.amount for line in renewal.lines.data] == [49900]


def test_proration_date_must_be_in_the_period(stripe_client, thirty_day_subscription, plans):
    sub, _ = thirty_day_subscription
    with pytest.raises(stripe.InvalidRequestError) as raised:
        _upgrade(stripe_client, sub, plans[1].id, proration_behavior="always_invoice",
                 proration_date=helpers.period(sub)[1] + 10)
    assert raised.value.param == "proration_date"


def _fail_future_charges(client, sub):
    failing = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": sub.customer})
    return client.v1.subscriptions.update(sub.id, {"default_payment_method": failing.id})


def test_error_if_incomplete_changes_nothing(stripe_client, thirty_day_subscription, plans):
    sub, middle = thirty_day_subscription
    sub = _fail_future_charges(stripe_client, sub)
    events_before = helpers.events(stripe_client)
    invoices_before = stripe_client.v1.invoices.list().data
    with pytest.raises(stripe.CardError) as raised:
        _upgrade(stripe_client, sub, plans[1].id, proration_behavior="always_invoice",
                 payment_behavior="error_if_incomplete", proration_date=middle)
    assert raised.value.http_status == 402 and raised.value.error.decline_code == "generic_decline"
    after = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert after.to_dict() == sub.to_dict()
    assert [i.id for i in stripe_client.v1.invoices.list().data] == [i.id for i in invoices_before]
    assert helpers.events(stripe_client) == events_before
    assert stripe_client.v1.invoice_items.list().data == []


def test_allow_incomplete_applies_and_leaves_invoice_open(stripe_client, thirty_day_subscription, plans):
    sub, middle = thirty_day_subscription
    sub = _fail_future_charges(stripe_client, sub)
    updated = _upgrade(stripe_client, sub, plans[1].id, proration_behavior="always_invoice", proration_date=middle)
    assert updated["items"].data[0].price.id == plans[1].id
    assert updated.status == "past_due"
    assert updated.latest_invoice.status == "open" and updated.latest_invoice.amount_remaining == 20000


def test_downgrade_credit_becomes_customer_balance(stripe_client, sandbox, plans):
    pro, enterprise = plans
    sandbox.advance(to=helpers.next_month_start_with_days(sandbox.now(), 30))
    cus = helpers.customer(stripe_client)
    sub = helpers.subscribe(stripe_client, cus.id, enterprise.id)
    start, end = helpers.period(sub)
    middle = start + 15 * DAY
    sandbox.advance(to=middle)
    updated = _upgrade(stripe_client, sub, pro.id, proration_behavior="always_invoice", proration_date=middle)
    inv = updated.latest_invoice
    assert inv.total == -20000 and inv.amount_due == 0 and inv.status == "paid"
    assert inv.ending_balance == -20000
    assert stripe_client.v1.customers.retrieve(cus.id).balance == -20000
    sandbox.advance(to=end + helpers.AFTER_RENEWAL)
    renewal = stripe_client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]}).latest_invoice
    assert renewal.total == 9900 and renewal.starting_balance == -20000
    assert renewal.amount_due == 0 and renewal.ending_balance == -10100
    assert stripe_client.v1.customers.retrieve(cus.id).balance == -10100


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old=st.integers(100, 500_000), new=st.integers(100, 500_000), skip_days=st.integers(0, 200),
       fraction=st.fractions(0, 1))
def test_preview_equals_charge_for_random_changes(stripe_client, sandbox, old, new, skip_days, fraction):
    """Any prices, any period length (the start day moves the month), any proration moment."""
    sandbox.advance(seconds=skip_days * DAY + 1)
    first = helpers.price(stripe_client, old, "Old")
    second = helpers.price(stripe_client, new, "New")
    cus = helpers.customer(stripe_client)
    sub = helpers.subscribe(stripe_client, cus.id, first.id)
    try:
        start, end = helpers.period(sub)
        at = start + int((end - start) * fraction)  # proration_date may be anywhere in the period
        details = {"items": [{"id": sub["items"].data[0].id, "price": second.id}], "proration_date": at,
                   "proration_behavior": "always_invoice"}
        preview = stripe_client.v1.invoices.create_preview({"customer": cus.id, "subscription": sub.id,
                                                            "subscription_details": details})
        expected = sum(proration_pair(old, new, start, end, at))
        assert preview.total == expected
        updated = _upgrade(stripe_client, sub, second.id, proration_behavior="always_invoice", proration_date=at)
        if at < end:  # at the very end nothing is left to prorate, so nothing is invoiced
            charged = updated.latest_invoice
            assert charged.total == preview.total and charged.amount_due == preview.amount_due
            assert charged.amount_paid == preview.amount_due == max(expected, 0)
    finally:
        stripe_client.v1.subscriptions.cancel(sub.id)  # later clock moves then renew nothing


def test_proration_lines_are_written_in_the_customer_s_preferred_language(stripe_client, thirty_day_subscription,
                                                                           plans):
    """Stripe writes the lines it makes in the first of the customer's ``preferred_locales`` it supports."""
    sub, middle = thirty_day_subscription
    _, enterprise = plans
    stripe_client.v1.customers.update(sub.customer, {"preferred_locales": ["pt-BR", "en"]})
    updated = _upgrade(stripe_client, sub, enterprise.id, proration_behavior="always_invoice", proration_date=middle)
    lines = sorted((line.amount, line.description) for line in updated.latest_invoice.lines.data)
    assert [amount for amount, _ in lines] == [-4950, 24950]
    assert lines[0][1].startswith("Tempo não utilizado de Pro após ") and " de 20" in lines[0][1]
    assert lines[1][1].startswith("Tempo restante de Enterprise após ")
    renewal = stripe_client.v1.invoices.create_preview({"subscription": sub.id})
    assert any("(a R$ 499,00 / mês)" in line.description for line in renewal.lines.data)


def test_a_language_stripe_does_not_support_here_falls_back_to_english(stripe_client, thirty_day_subscription, plans):
    sub, middle = thirty_day_subscription
    _, enterprise = plans
    stripe_client.v1.customers.update(sub.customer, {"preferred_locales": ["de"]})
    updated = _upgrade(stripe_client, sub, enterprise.id, proration_behavior="always_invoice", proration_date=middle)
    descriptions = sorted(line.description for line in updated.latest_invoice.lines.data)
    assert descriptions[0].startswith("Remaining time on Enterprise after")
    assert descriptions[1].startswith("Unused time on Pro after")

"""Subscriptions: creation, trials, cancellation, and what the clock does to them."""

from __future__ import annotations

import pytest
import stripe

from . import helpers
from .helpers import DAY


@pytest.fixture
def pro(stripe_client):
    return helpers.price(stripe_client, 9900, "Pro")


def test_create_charges_first_invoice(stripe_client, pro):
    cus = helpers.customer(stripe_client)
    sub = helpers.subscribe(stripe_client, cus.id, pro.id, metadata={"app_id": "3"},
                            expand=["latest_invoice.payments.data.payment.payment_intent"])
    assert sub.status == "active" and sub.collection_method == "charge_automatically"
    assert sub.metadata["app_id"] == "3" and sub.currency == "brl" and sub.customer == cus.id
    item = sub["items"].data[0]
    assert item.price.id == pro.id and item.quantity == 1
    start, end = helpers.period(sub)
    assert start == sub.start_date == sub.billing_cycle_anchor and end > start
    inv = sub.latest_invoice
    assert inv.billing_reason == "subscription_create" and inv.status == "paid"
    assert inv.parent.subscription_details.subscription == sub.id and inv.parent.type == "subscription_details"
    assert inv.amount_due == inv.amount_paid == 9900 and inv.amount_remaining == 0
    assert inv.number.startswith(cus.invoice_prefix + "-")
    line = inv.lines.data[0]
    assert line.parent.subscription_item_details.proration is False
    assert line.pricing.price_details.price == pro.id
    assert (line.period.start, line.period.end) == (start, end)
    pi = inv.payments.data[0].payment.payment_intent
    assert pi.status == "succeeded" and pi.amount_received == 9900
    types = helpers.event_types(stripe_client)
    for expected in ("customer.subscription.created", "invoice.created", "invoice.finalized",
                     "payment_intent.succeeded", "invoice.paid", "invoice.payment_succeeded"):
        assert expected in types
    assert types.index("customer.subscription.created") < types.index("invoice.created") \
        < types.index("invoice.finalized") < types.index("invoice.paid")


def test_declined_first_payment_modes(stripe_client, pro):
    cus = helpers.customer(stripe_client, pm="pm_card_chargeCustomerFail")
    sub = helpers.subscribe(stripe_client, cus.id, pro.id, expand=["latest_invoice"])
    assert sub.status == "incomplete"
    assert sub.latest_invoice.status == "open" and sub.latest_invoice.attempt_count == 1
    with pytest.raises(stripe.CardError):
        helpers.subscribe(stripe_client, cus.id, pro.id, payment_behavior="error_if_incomplete")
    assert len(stripe_client.v1.subscriptions.list({"customer": cus.id}).data) == 1
    pending = helpers.subscribe(stripe_client, cus.id, pro.id, payment_behavior="default_incomplete",
                                expand=["latest_invoice"])
    assert pending.status == "incomplete" and pending.latest_invoice.attempt_count == 0


def test_incomplete_subscription_expires_after_23_hours(stripe_client, sandbox, pro):
    cus = helpers.customer(stripe_client, pm="pm_card_chargeCustomerFail")
    sub = helpers.subscribe(stripe_client, cus.id, pro.id)
    sandbox.advance(seconds=24 * 3600)
    sub = stripe_client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    assert sub.status == "incomplete_expired" and sub.latest_invoice.status == "void"


def test_trial_then_first_real_invoice(stripe_client, sandbox, pro):
    cus = helpers.customer(stripe_client)
    sub = helpers.subscribe(stripe_client, cus.id, pro.id, trial_period_days=14, expand=["latest_invoice"])
    assert sub.status == "trialing" and sub.trial_end == sub.trial_start + 14 * DAY
    assert sub.latest_invoice.amount_due == 0 and sub.latest_invoice.status == "paid"
    sandbox.advance(to=sub.trial_end - 2 * DAY)
    warning = helpers.events(stripe_client, "customer.subscription.trial_will_end")
    assert len(warning) == 1 and warning[0]["created"] == sub.trial_end - 3 * DAY
    sandbox.advance(to=sub.trial_end + helpers.AFTER_RENEWAL)
    sub = stripe_client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    assert sub.status == "active"
    assert helpers.period(sub)[0] == sub.trial_end
    assert sub.latest_invoice.billing_reason == "subscription_cycle"
    assert sub.latest_invoice.amount_paid == 9900


def test_renewals_over_several_months_in_one_advance(stripe_client, sandbox, pro):
    cus = helpers.customer(stripe_client)
    sub = helpers.subscribe(stripe_client, cus.id, pro.id)
    anchor = sub.billing_cycle_anchor
    sandbox.advance(seconds=95 * DAY)
    invoices = stripe_client.v1.invoices.list({"subscription": sub.id}).data
    assert [i.billing_reason for i in invoices] == ["subscription_cycle"] * 3 + ["subscription_create"]
    assert all(i.status == "paid" and i.amount_paid == 9900 for i in invoices)
    lines = [i.lines.data[0].period for i in reversed(invoices)]
    for before, after in zip(lines, lines[1:]):
        assert after.start == before.end  # periods are contiguous
    assert invoices[0].period_end == lines[-1].start  # a renewal invoice covers the period just ended
    sub = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert sub.billing_cycle_anchor == anchor and helpers.period(sub)[0] == lines[-1].start
    created = [e["created"] for e in helpers.events(stripe_client)]
    assert created == sorted(created)
    renewal_times = [e["created"] for e in helpers.events(stripe_client, "invoice.created")][1:]
    assert renewal_times == [line.start for line in lines[1:]]


def test_failed_renewal_goes_past_due_then_pays(stripe_client, sandbox, pro):
    cus = helpers.customer(stripe_client)
    sub = helpers.subscribe(stripe_client, cus.id, pro.id)
    failing = stripe_client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": cus.id})
    stripe_client.v1.subscriptions.update(sub.id, {"default_payment_method": failing.id})
    sandbox.advance(to=helpers.period(sub)[1] + 3600)
    sub = stripe_client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    inv = sub.latest_invoice
    assert sub.status == "past_due"
    assert inv.status == "open" and inv.attempt_count == 1 and inv.attempted
    assert inv.next_payment_attempt is None  # retries belong to the kernel
    failed = helpers.events(stripe_client, "invoice.payment_failed")
    assert [e["data"]["object"]["id"] for e in failed] == [inv.id]
    updates = helpers.events(stripe_client, "customer.subscription.updated")
    assert updates[-1]["data"]["previous_attributes"]["status"] == "active"
    with pytest.raises(stripe.CardError):
        stripe_client.v1.invoices.pay(inv.id)
    assert stripe_client.v1.invoices.retrieve(inv.id).attempt_count == 2
    paid = stripe_client.v1.invoices.pay(inv.id, {"payment_method": "pm_card_visa"})
    assert paid.status == "paid" and paid.amount_paid == 9900
    sub = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert sub.status == "active"
    last = helpers.events(stripe_client, "customer.subscription.updated")[-1]
    assert last["data"]["previous_attributes"]["status"] == "past_due"


def test_past_due_subscription_keeps_renewing(stripe_client, sandbox, pro):
    cus = helpers.customer(stripe_client)
    sub = helpers.subscribe(stripe_client, cus.id, pro.id)
    failing = stripe_client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": cus.id})
    stripe_client.v1.subscriptions.update(sub.id, {"default_payment_method": failing.id})
    sandbox.advance(seconds=65 * DAY)
    invoices = stripe_client.v1.invoices.list({"subscription": sub.id, "status": "open"}).data
    assert len(invoices) == 2
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "past_due"


def test_cancel_at_period_end_resume_and_crossing(stripe_client, sandbox, pro):
    cus = helpers.customer(stripe_client)
    sub = helpers.subscribe(stripe_client, cus.id, pro.id)
    end = helpers.period(sub)[1]
    scheduled = stripe_client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    assert scheduled.cancel_at_period_end and scheduled.cancel_at == end and scheduled.status == "active"
    resumed = stripe_client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": False})
    assert not resumed.cancel_at_period_end and resumed.cancel_at is None and resumed.canceled_at is None
    stripe_client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    sandbox.advance(to=end - 60)
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "active"
    sandbox.advance(to=end + 60)
    sub = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert sub.status == "canceled" and sub.ended_at == end
    assert len(stripe_client.v1.invoices.list({"subscription": sub.id}).data) == 1  # no renewal invoice
    deleted = helpers.events(stripe_client, "customer.subscription.deleted")
    assert len(deleted) == 1 and deleted[0]["created"] == end


def test_cancel_now_and_list_filters(stripe_client, pro):
    cus = helpers.customer(stripe_client)
    keep = helpers.subscribe(stripe_client, cus.id, pro.id)
    gone = helpers.subscribe(stripe_client, cus.id, helpers.price(stripe_client, 500, "Addon").id)
    canceled = stripe_client.v1.subscriptions.cancel(gone.id)
    assert canceled.status == "canceled" and canceled.canceled_at and canceled.ended_at
    assert [s.id for s in stripe_client.v1.subscriptions.list({"customer": cus.id}).data] == [keep.id]
    assert {s.id for s in stripe_client.v1.subscriptions.list({"status": "all"}).data} == {keep.id, gone.id}
    assert [s.id for s in stripe_client.v1.subscriptions.list({"status": "canceled"}).data] == [gone.id]
    assert [s.id for s in stripe_client.v1.subscriptions.list({"price": pro.id}).data] == [keep.id]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.subscriptions.update(gone.id, {"items": [{"price": pro.id}]})


def test_calendar_month_periods(stripe_client, sandbox, pro):
    """A subscription started on the 1st of a 30-day month has a 30-day first period."""
    start = helpers.next_month_start_with_days(sandbox.now(), 30)
    sandbox.advance(to=start)
    sub = helpers.subscribe(stripe_client, helpers.customer(stripe_client).id, pro.id)
    begin, end = helpers.period(sub)
    assert end - begin == 30 * DAY


def test_ending_a_trial_now_starts_a_paid_period(stripe_client, sandbox, pro):
    cus = helpers.customer(stripe_client)
    sub = helpers.subscribe(stripe_client, cus.id, pro.id, trial_period_days=30)
    sandbox.advance(seconds=5 * DAY)
    now = sandbox.now()
    sub = stripe_client.v1.subscriptions.update(sub.id, {"trial_end": "now", "metadata": {"upgraded": "1"},
                                                         "expand": ["latest_invoice"]})
    assert sub.status == "active" and sub.metadata["upgraded"] == "1"
    start, end = helpers.period(sub)
    assert abs(start - now) < 5 and sub.billing_cycle_anchor == start
    assert 28 * DAY <= end - start <= 31 * DAY
    assert sub.latest_invoice.amount_paid == 9900


def test_cancel_now_with_proration_credits_the_customer(stripe_client, sandbox, pro):
    sandbox.advance(to=helpers.next_month_start_with_days(sandbox.now(), 30))
    cus = helpers.customer(stripe_client)
    sub = helpers.subscribe(stripe_client, cus.id, pro.id)
    start, _ = helpers.period(sub)
    sandbox.advance(to=start + 15 * DAY)
    canceled = stripe_client.v1.subscriptions.cancel(sub.id, {"prorate": True, "invoice_now": True})
    assert canceled.status == "canceled"
    final = stripe_client.v1.invoices.retrieve(canceled.latest_invoice)
    assert final.lines.data[0].amount == pytest.approx(-4950, abs=1)
    assert stripe_client.v1.customers.retrieve(cus.id).balance == final.total


def test_cancel_at_trial_end_never_charges(stripe_client, sandbox, pro):
    cus = helpers.customer(stripe_client)
    sub = helpers.subscribe(stripe_client, cus.id, pro.id, trial_period_days=7)
    sub = stripe_client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    assert sub.cancel_at == sub.trial_end
    sandbox.advance(to=sub.trial_end + helpers.AFTER_RENEWAL)
    sub = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert sub.status == "canceled" and sub.ended_at == sub.trial_end
    assert stripe_client.v1.charges.list().data == []

"""Subscription schedules: a downgrade that waits for the period end, and release."""

from __future__ import annotations

import pytest
import stripe

from . import helpers


@pytest.fixture
def enterprise_subscription(stripe_client):
    pro = helpers.price(stripe_client, 9900, "Pro")
    enterprise = helpers.price(stripe_client, 49900, "Enterprise")
    cus = helpers.customer(stripe_client)
    sub = helpers.subscribe(stripe_client, cus.id, enterprise.id)
    return sub, pro, enterprise


def _schedule_downgrade(client, sub, pro, enterprise):
    schedule = client.v1.subscription_schedules.create({"from_subscription": sub.id})
    phase = schedule.phases[0]
    return client.v1.subscription_schedules.update(schedule.id, {
        "end_behavior": "release", "proration_behavior": "none",
        "phases": [
            {"items": [{"price": enterprise.id, "quantity": 1}], "start_date": phase.start_date,
             "end_date": phase.end_date},
            {"items": [{"price": pro.id, "quantity": 1}], "iterations": 1},
        ]})


def test_from_subscription_mirrors_the_current_period(stripe_client, enterprise_subscription):
    sub, _, enterprise = enterprise_subscription
    schedule = stripe_client.v1.subscription_schedules.create({"from_subscription": sub.id})
    start, end = helpers.period(sub)
    assert schedule.status == "active" and schedule.subscription == sub.id
    assert (schedule.current_phase.start_date, schedule.current_phase.end_date) == (start, end)
    assert schedule.phases[0]["items"][0].price == enterprise.id
    assert stripe_client.v1.subscriptions.retrieve(sub.id).schedule == schedule.id
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.subscription_schedules.create({"from_subscription": sub.id})


def test_downgrade_happens_when_the_clock_crosses_the_period_end(stripe_client, sandbox, enterprise_subscription):
    sub, pro, enterprise = enterprise_subscription
    schedule = _schedule_downgrade(stripe_client, sub, pro, enterprise)
    start, end = helpers.period(sub)
    assert [p.end_date for p in schedule.phases][0] == end
    # Nothing changes before the boundary, and no proration is ever made.
    sandbox.advance(to=end - 3600)
    assert stripe_client.v1.subscriptions.retrieve(sub.id)["items"].data[0].price.id == enterprise.id
    sandbox.advance(to=end + 3600)
    sub = stripe_client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    assert sub["items"].data[0].price.id == pro.id
    assert sub.latest_invoice.billing_reason == "subscription_cycle"
    assert [line.amount for line in sub.latest_invoice.lines.data] == [9900]
    assert stripe_client.v1.invoice_items.list().data == []
    price_change = [e for e in helpers.events(stripe_client, "customer.subscription.updated")
                    if "items" in e["data"]["previous_attributes"]
                    and e["data"]["object"]["items"]["data"][0]["price"]["id"] == pro.id][0]
    assert price_change["created"] == end
    assert price_change["data"]["previous_attributes"]["items"]["data"][0]["price"]["id"] == enterprise.id
    schedule = stripe_client.v1.subscription_schedules.retrieve(schedule.id)
    assert schedule.current_phase.start_date == end
    # After the last phase the schedule lets go and the subscription carries on at the new price.
    second_end = schedule.phases[1].end_date
    sandbox.advance(to=second_end + 3600)
    schedule = stripe_client.v1.subscription_schedules.retrieve(schedule.id)
    assert schedule.status == "released" and schedule.released_subscription == sub.id
    sub = stripe_client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    assert sub.schedule is None and sub.status == "active"
    assert sub.latest_invoice.amount_paid == 9900
    assert "subscription_schedule.released" in helpers.event_types(stripe_client)


def test_release_undoes_the_planned_downgrade(stripe_client, sandbox, enterprise_subscription):
    sub, pro, enterprise = enterprise_subscription
    schedule = _schedule_downgrade(stripe_client, sub, pro, enterprise)
    released = stripe_client.v1.subscription_schedules.release(schedule.id)
    assert released.status == "released" and released.subscription is None
    assert stripe_client.v1.subscriptions.retrieve(sub.id).schedule is None
    sandbox.advance(to=helpers.period(sub)[1] + 3600)
    sub = stripe_client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    assert sub["items"].data[0].price.id == enterprise.id
    assert sub.latest_invoice.amount_paid == 49900


def test_cancel_schedule_cancels_subscription(stripe_client, enterprise_subscription):
    sub, pro, enterprise = enterprise_subscription
    schedule = _schedule_downgrade(stripe_client, sub, pro, enterprise)
    canceled = stripe_client.v1.subscription_schedules.cancel(schedule.id, {"prorate": False})
    assert canceled.status == "canceled"
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "canceled"


def test_scheduled_subscription_refuses_direct_cancellation_changes(stripe_client, enterprise_subscription):
    sub, pro, enterprise = enterprise_subscription
    _schedule_downgrade(stripe_client, sub, pro, enterprise)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})


def test_renewal_preview_shows_the_scheduled_price(stripe_client, enterprise_subscription):
    sub, pro, enterprise = enterprise_subscription
    _schedule_downgrade(stripe_client, sub, pro, enterprise)
    preview = stripe_client.v1.invoices.create_preview({"customer": sub.customer, "subscription": sub.id})
    assert [line.amount for line in preview.lines.data] == [9900]
    assert preview.lines.data[0].period.start == helpers.period(sub)[1]

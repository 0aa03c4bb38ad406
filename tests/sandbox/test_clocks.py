"""Test clocks as in Stripe: several, each with its own frozen time and customers; advancing is
asynchronous; a renewal invoice is a draft for an hour before it is finalized and charged."""

from __future__ import annotations

import time

import pytest
import stripe

from sandbox.testing import wait_until_ready

from . import helpers
from .helpers import DAY


def test_clocks_have_their_own_time_and_customers(stripe_client, sandbox):
    start = helpers.next_month_start_with_days(int(time.time()), 30)
    first = helpers.clock(stripe_client, start, name="first")
    second = helpers.clock(stripe_client, start + 5 * DAY, name="second")
    assert (first.status, first.frozen_time, first.name) == ("ready", start, "first")
    on_first = stripe_client.v1.customers.create({"test_clock": first.id})
    on_second = stripe_client.v1.customers.create({"test_clock": second.id})
    on_none = stripe_client.v1.customers.create({})
    assert (on_first.test_clock, on_first.created) == (first.id, start)
    assert (on_second.test_clock, on_second.created) == (second.id, start + 5 * DAY)
    assert on_none.test_clock is None and abs(on_none.created - time.time()) < 5
    listed = stripe_client.v1.customers.list({"test_clock": first.id}).data
    assert [c.id for c in listed] == [on_first.id]
    helpers.advance(stripe_client, first.id, start + DAY)
    assert stripe_client.v1.test_helpers.test_clocks.retrieve(second.id).frozen_time == start + 5 * DAY
    with pytest.raises(stripe.InvalidRequestError, match="No such test_clock"):
        stripe_client.v1.customers.create({"test_clock": "clock_missing"})


def test_advance_is_asynchronous_and_announced(stripe_client, sandbox):
    clock = helpers.clock(stripe_client, int(time.time()))
    answer = stripe_client.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": clock.frozen_time + DAY})
    assert answer.status == "advancing" and answer.frozen_time == clock.frozen_time
    assert answer.status_details.advancing.target_frozen_time == clock.frozen_time + DAY
    ready = wait_until_ready(lambda: stripe_client.v1.test_helpers.test_clocks.retrieve(clock.id).to_dict())
    assert (ready["status"], ready["frozen_time"], ready["status_details"]) == ("ready", clock.frozen_time + DAY, {})
    types = [e["type"] for e in helpers.events(stripe_client) if e["type"].startswith("test_helpers.")]
    assert types == ["test_helpers.test_clock.created", "test_helpers.test_clock.advancing",
                     "test_helpers.test_clock.ready"]
    with pytest.raises(stripe.InvalidRequestError, match="only move forward"):
        stripe_client.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": clock.frozen_time})


def test_a_renewal_is_a_draft_for_an_hour_then_charged(stripe_client, sandbox):
    pro = helpers.price(stripe_client, 9900, "Pro")
    cus = helpers.customer(stripe_client)  # on the sandbox fixture's clock
    sub = helpers.subscribe(stripe_client, cus.id, pro.id)
    assert sub.test_clock == sandbox.clock_id
    end = helpers.period(sub)[1]
    sandbox.advance(to=end + 30 * 60)
    renewal = stripe_client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]}).latest_invoice
    assert renewal.billing_reason == "subscription_cycle" and renewal.status == "draft"
    assert renewal.automatically_finalizes_at == end + 3600 and renewal.test_clock == sandbox.clock_id
    assert helpers.events(stripe_client, "invoice.finalized")[-1]["data"]["object"]["id"] != renewal.id
    sandbox.advance(to=end + 3600)
    paid = stripe_client.v1.invoices.retrieve(renewal.id)
    assert paid.status == "paid" and paid.amount_paid == 9900 and paid.automatically_finalizes_at is None
    assert paid.status_transitions.finalized_at == end + 3600 == paid.status_transitions.paid_at
    finalized = [e for e in helpers.events(stripe_client, "invoice.finalized") if e["data"]["object"]["id"] == paid.id]
    assert [e["created"] for e in finalized] == [end + 3600]


def test_deleting_a_clock_deletes_what_lives_on_it(stripe_client, sandbox):
    clock = helpers.clock(stripe_client, int(time.time()))
    cus = stripe_client.v1.customers.create({"test_clock": clock.id})
    deleted = stripe_client.v1.test_helpers.test_clocks.delete(clock.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.customers.retrieve(cus.id)
    assert helpers.event_types(stripe_client)[-1] == "test_helpers.test_clock.deleted"


def test_retrieve_and_delete_refuse_unknown_parameters(sandbox):
    for method in ("GET", "DELETE"):
        answer = helpers.raw(sandbox, method, f"/v1/test_helpers/test_clocks/{sandbox.clock_id}",
                             params={"bogus": "1"})
        assert answer.status_code == 400
        assert answer.json() == {"error": {"type": "invalid_request_error", "code": "parameter_unknown",
                                           "param": "bogus", "message": "Received unknown parameter: bogus",
                                           "doc_url": "https://stripe.com/docs/error-codes/parameter-unknown"}}

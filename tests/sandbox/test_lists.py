"""List endpoints: order, pagination over many objects, filters, and bulk seeding."""

from __future__ import annotations


import pytest
import stripe

from . import helpers


def test_pagination_over_more_than_a_hundred(stripe_client, sandbox):
    created = [stripe_client.v1.customers.create({"email": f"c{i}@example.com"}).id for i in range(130)]
    newest_first = list(reversed(created))
    page = stripe_client.v1.customers.list({"limit": 100})
    assert page.has_more and [c.id for c in page.data] == newest_first[:100]
    rest = stripe_client.v1.customers.list({"limit": 100, "starting_after": page.data[-1].id})
    assert not rest.has_more and [c.id for c in rest.data] == newest_first[100:]
    back = stripe_client.v1.customers.list({"limit": 5, "ending_before": rest.data[0].id})
    assert [c.id for c in back.data] == newest_first[95:100] and back.has_more
    assert [c.id for c in stripe_client.v1.customers.list().auto_paging_iter()] == newest_first
    assert len(stripe_client.v1.customers.list().data) == 10  # default limit
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.customers.list({"limit": 101})


def test_created_filters(stripe_client, sandbox):
    old = stripe_client.v1.customers.create({"test_clock": sandbox.clock_id})
    sandbox.advance(seconds=3600)
    cut = sandbox.now()
    new = stripe_client.v1.customers.create({"test_clock": sandbox.clock_id})
    assert [c.id for c in stripe_client.v1.customers.list({"created": {"gte": cut}}).data] == [new.id]
    assert [c.id for c in stripe_client.v1.customers.list({"created": {"lt": cut}}).data] == [old.id]


def test_email_and_product_filters(stripe_client):
    stripe_client.v1.customers.create({"email": "x@example.com"})
    wanted = stripe_client.v1.customers.create({"email": "y@example.com"})
    assert [c.id for c in stripe_client.v1.customers.list({"email": "y@example.com"}).data] == [wanted.id]
    one = helpers.price(stripe_client, 100, "One")
    helpers.price(stripe_client, 200, "Two")
    assert [p.id for p in stripe_client.v1.prices.list({"product": one.product}).data] == [one.id]
    stripe_client.v1.prices.update(one.id, {"active": False})
    assert one.id not in [p.id for p in stripe_client.v1.prices.list({"active": True}).data]


def test_deleted_customer(stripe_client):
    cus = stripe_client.v1.customers.create({"email": "bye@example.com"})
    deleted = stripe_client.v1.customers.delete(cus.id)
    assert deleted.deleted is True
    assert stripe_client.v1.customers.retrieve(cus.id).deleted is True
    assert stripe_client.v1.customers.list().data == []


def test_bulk_seed_then_pages(stripe_client, sandbox):
    pro = helpers.price(stripe_client, 9900)
    counts = sandbox.bulk_seed(3000, pro.id, invoices_per_subscription=2)
    assert counts["subscriptions"] == 3000 and counts["invoices"] == 6000
    sandbox.clear_stats()
    # How fast pages are is measured by bench/reconciliation.py; here only what they hold.
    page = stripe_client.v1.subscriptions.list({"limit": 100})
    later = stripe_client.v1.invoices.list({"limit": 100, "starting_after": stripe_client.v1.invoices.list(
        {"limit": 100}).data[-1].id, "status": "paid"})
    assert len(page.data) == 100 and page.has_more and len(later.data) == 100
    sub = page.data[0]
    assert sub.status == "active"
    invoices = stripe_client.v1.invoices.list({"subscription": sub.id}).data
    assert [i.status for i in invoices] == ["paid", "paid"] and invoices[0].amount_paid == 9900
    assert sandbox.stats()["total"] == 4


def test_bulk_seed_on_a_clock_with_cards_renews_when_the_clock_moves(stripe_client, sandbox):
    pro = helpers.price(stripe_client, 9900)
    clock = sandbox.create_clock()
    sandbox.bulk_seed(3, pro.id, test_clock=clock, card="visa")
    subs = stripe_client.v1.subscriptions.list({"test_clock": clock}).data
    assert len(subs) == 3 and all(s.test_clock == clock and s.default_payment_method for s in subs)
    method = stripe_client.v1.payment_methods.retrieve(subs[0].default_payment_method)
    assert method.customer == subs[0].customer and method.card.last4 == "4242"
    end = subs[0]["items"].data[0].current_period_end
    sandbox.advance(to=end + 7200, clock_id=clock)  # the renewal, finalized and charged an hour later
    for sub in subs:
        renewal = stripe_client.v1.invoices.list({"subscription": sub.id}).data[0]
        assert renewal.billing_reason == "subscription_cycle" and renewal.status == "paid"
        assert renewal.amount_paid == 9900
    kinds = [e.type for e in stripe_client.v1.events.list({"limit": 100}).data]
    for kind in ("invoice.created", "invoice.finalized", "invoice.paid", "payment_intent.succeeded",
                 "customer.subscription.updated"):
        assert kinds.count(kind) == 3, kind


def test_bulk_seed_refuses_an_unknown_clock_or_card(stripe_client, sandbox):
    pro = helpers.price(stripe_client, 9900)
    with pytest.raises(RuntimeError, match="No such test clock"):
        sandbox.bulk_seed(1, pro.id, test_clock="clock_missing")
    with pytest.raises(RuntimeError, match="No such test card"):
        sandbox.bulk_seed(1, pro.id, card="platinum")
    assert stripe_client.v1.customers.list().data == []

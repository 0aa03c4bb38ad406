"""Property: a subscription's event history, delivered in any order with duplicates, ends in its newest state.

Stripe delivers at least once and in no particular order. Whatever the order, once
every delivery was made and the queue retried what failed (as RQ does), the row must
hold the state of the last event by ``created`` (for events of the same second, the
one Stripe holds now, which is what the handler asks for).
"""
from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from billing.models import App, AppSubscription, ProcessedWebhook, WebhookStatus
from portal.webhooks.apply import process_event
from portal.extensions import db
from tests.webhooks.helpers import PERIOD_END, PERIOD_START, PresentStripe, event, post, subscription

_examples = itertools.count(1)
MONTH = 31 * 86400


# One step of a subscription's life after it became active: what changes, as a function of the state.
STEPS = ["renew", "fail_renewal", "recover", "upgrade", "downgrade", "cancel_at_end", "resume"]


@st.composite
def histories(draw):
    """(events in history order, the expected final object)."""
    n = next(_examples)
    sub_id, customer = f"sub_prop{n}", f"cus_prop{n}"
    state = dict(status="incomplete", price="price_pro", amount=9900, cancel_at_period_end=False,
                 period_start=PERIOD_START, period_end=PERIOD_END)
    created = PERIOD_START
    objects = [("customer.subscription.created", created, dict(state))]

    def step(event_type, gap, **changes):
        nonlocal created
        created += gap
        state.update(changes)
        objects.append((event_type, created, dict(state)))

    gaps = st.sampled_from([0, 1, 1, 60, 3600])  # 0: the same second, as Stripe's events often are
    step("customer.subscription.updated", draw(gaps), status="active")
    for name in draw(st.lists(st.sampled_from(STEPS), max_size=6)):
        gap = draw(gaps)
        if name == "renew" and state["status"] == "active":
            step("customer.subscription.updated", gap, period_start=state["period_end"],
                 period_end=state["period_end"] + MONTH)
        elif name == "fail_renewal" and state["status"] == "active":
            step("customer.subscription.updated", gap, status="past_due", period_start=state["period_end"],
                 period_end=state["period_end"] + MONTH)
        elif name == "recover" and state["status"] == "past_due":
            step("customer.subscription.updated", gap, status="active")
        elif name == "upgrade" and state["price"] == "price_pro":
            step("customer.subscription.updated", gap, price="price_ent", amount=49900)
        elif name == "downgrade" and state["price"] == "price_ent":
            step("customer.subscription.updated", gap, price="price_pro", amount=9900)
        elif name == "cancel_at_end" and not state["cancel_at_period_end"]:
            step("customer.subscription.updated", gap, cancel_at_period_end=True)
        elif name == "resume" and state["cancel_at_period_end"]:
            step("customer.subscription.updated", gap, cancel_at_period_end=False)
    if draw(st.booleans()):
        step("customer.subscription.deleted", draw(gaps), status="canceled")

    events = [event(kind, subscription(sub_id=sub_id, customer=customer, **obj), created=at)
              for kind, at, obj in objects]
    final = events[-1]["data"]["object"]
    order = draw(st.permutations(events))
    duplicates = draw(st.lists(st.tuples(st.integers(0, len(events) - 1), st.integers(0, len(events))),
                               max_size=4))
    deliveries = list(order)
    for which, where in duplicates:
        deliveries.insert(where, events[which])
    return customer, events, deliveries, final


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_any_delivery_order_ends_in_the_newest_state(app, client, acme, history):
    customer, events, deliveries, final = history
    with app.app_context():
        db.session.add(App(name=customer, slug=customer, stripe_customer_id=customer))
        db.session.commit()
    app.extensions["billing_gateway"] = PresentStripe(final)  # Stripe holds the end of the history

    for payload in deliveries:
        assert post(client, payload).status_code == 200
    # What RQ does with a failed job: run it again later (here: until nothing is left to retry).
    ids = [e["id"] for e in events]
    for _ in range(len(events)):
        with app.app_context():
            failed = db.session.scalars(select(ProcessedWebhook.event_id).where(
                ProcessedWebhook.event_id.in_(ids), ProcessedWebhook.status == WebhookStatus.FAILED)
                .order_by(ProcessedWebhook.id)).all()
        if not failed:
            break
        for event_id in failed:
            try:
                process_event(event_id)
            except Exception:  # noqa: BLE001 - RQ records the failure and retries later, as the next round does
                pass

    with app.app_context():
        row = db.session.scalar(select(AppSubscription).where(AppSubscription.stripe_subscription_id == final["id"]))
        item = final["items"]["data"][0]
        assert row.status.value == final["status"]
        assert row.plan.stripe_price_id == item["price"]["id"]
        assert row.cancel_at_period_end == final["cancel_at_period_end"]
        assert int(row.current_period_start.timestamp()) == item["current_period_start"]
        assert int(row.current_period_end.timestamp()) == item["current_period_end"]
        statuses = set(db.session.scalars(select(ProcessedWebhook.status).where(ProcessedWebhook.event_id.in_(ids))))
        assert statuses == {WebhookStatus.PROCESSED}

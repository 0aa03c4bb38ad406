"""A month of renewals for N of our apps, made by the sandbox: the benchmark's realistic events.

``seed`` bulk-seeds the sandbox with N customers on one test clock, each with a card and an
active monthly subscription (``/_sandbox/bulk_seed``), and the portal's database with the
matching plan, apps and subscription rows (one ``executemany`` per table), as if each app
had subscribed through Checkout a while ago. ``month`` then advances the clock past the
next period end: the sandbox renews every subscription as Stripe would (draft invoice,
finalized and charged an hour later) and records the events. It returns those the portal
subscribes to (``TYPES``), oldest first, as the JSON Stripe would POST: about our own
objects, so each handler does its real work (looks rows up, asks the sandbox again on a
same-second tie, fetches the PaymentIntent that paid an invoice, syncs, audits).

No webhook endpoint is registered with the sandbox: the benchmark sends the events itself,
signed, in a burst, so that the figures are the portal's and not the sandbox's delivery rate.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine

from billing.models import App, AppSubscription, KernelPlan, SubscriptionStatus
from sandbox.testing import SandboxControl

# What a renewal tells the portal (docs/webhooks.md lists the endpoint's events); the sandbox also
# emits charge.succeeded, payment_intent.created, invoice.payment_succeeded and invoice_payment.paid,
# which that list does not enable.
TYPES = ("invoice.created", "customer.subscription.updated", "invoice.finalized", "payment_intent.succeeded",
         "invoice.paid")
PRICE = 9900
CURRENCY = "brl"
HOUR = 3600


@dataclass
class Seeded:
    clock: str
    price: str
    apps: int
    seconds: float


def _api(sandbox: SandboxControl, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
    if method == "GET" and params:
        path = f"{path}?{urlencode(params)}"
        params = None
    return sandbox._call(method, path, params, api=True)


def _pages(sandbox: SandboxControl, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object of a list endpoint (newest first, as Stripe lists)."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        page = _api(sandbox, "GET", path, {**params, "limit": 100, **({"starting_after": after} if after else {})})
        found.extend(page["data"])
        if not page["has_more"]:
            return found
        after = page["data"][-1]["id"]


def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def seed(sandbox: SandboxControl, engine: Engine, apps: int) -> Seeded:
    import time

    began = time.monotonic()
    clock = sandbox.create_clock(name="bench-renewals")
    price = _api(sandbox, "POST", "/v1/prices", {"unit_amount": PRICE, "currency": CURRENCY,
                                                "recurring[interval]": "month", "product_data[name]": "Bench Pro"})
    sandbox.bulk_seed(apps, price["id"], test_clock=clock, card="visa")
    subscriptions = _pages(sandbox, "/v1/subscriptions", {"test_clock": clock})
    with engine.begin() as connection:
        plan_id = connection.execute(insert(KernelPlan.__table__).values(
            code="bench_pro", name="Bench Pro", amount=PRICE, currency=CURRENCY, interval="month", trial_days=0,
            rank=1, stripe_price_id=price["id"], active=True).returning(KernelPlan.__table__.c.id)).scalar_one()
        connection.execute(insert(App.__table__), [
            {"name": f"Bench app {n}", "slug": f"bench-{n}", "billing_email": f"bench{n}@example.test",
             "stripe_customer_id": sub["customer"]} for n, sub in enumerate(subscriptions)])
        app_ids = dict(connection.execute(select(App.__table__.c.stripe_customer_id, App.__table__.c.id)).all())
        rows = []
        for sub in subscriptions:
            item = sub["items"]["data"][0]
            method = sub["default_payment_method"]
            rows.append({
                "app_id": app_ids[sub["customer"]], "plan_id": plan_id, "status": SubscriptionStatus.ACTIVE,
                "stripe_customer_id": sub["customer"], "stripe_subscription_id": sub["id"],
                "payment_method_id": method, "card_brand": "visa", "card_last4": "4242",  # bulk_seed's card
                "current_period_start": _moment(item["current_period_start"]),
                "current_period_end": _moment(item["current_period_end"]),
                "cancel_at_period_end": False, "stripe_watermark": int(sub["created"]),
            })
        connection.execute(insert(AppSubscription.__table__), rows)
    return Seeded(clock, price["id"], len(subscriptions), time.monotonic() - began)


def month(sandbox: SandboxControl, clock: str) -> list[bytes]:
    """Advance ``clock`` past the next renewal (and its finalization an hour later); the events it made."""
    before = sandbox.now(clock)
    subscription = _api(sandbox, "GET", "/v1/subscriptions", {"test_clock": clock, "limit": 1})["data"][0]
    target = int(subscription["items"]["data"][0]["current_period_end"]) + 2 * HOUR
    sandbox.advance(to=target, clock_id=clock, timeout=900)
    events: list[dict[str, Any]] = []
    for event_type in TYPES:
        events.extend(_pages(sandbox, "/v1/events", {"type": event_type, "created[gt]": before}))
    # Oldest first, as Stripe sends them (it does not promise an order; the portal must not depend on one).
    events.sort(key=lambda event: (event["created"], event["id"]))
    return [json.dumps(event, separators=(",", ":")).encode() for event in events]


def end_state(engine: Engine, bodies: list[bytes]) -> dict[str, int]:
    """What the renewals should have left in our tables: every renewal invoice paid, its payment recorded."""
    invoices = set()
    intents = set()
    for body in bodies:
        event = json.loads(body)
        if event["type"] == "invoice.paid":
            invoices.add(event["data"]["object"]["id"])
        elif event["type"] == "payment_intent.succeeded":
            intents.add(event["data"]["object"]["id"])
    with engine.connect() as connection:
        paid = connection.execute(text(
            "SELECT stripe_invoice_id FROM kernel_invoices WHERE status = 'paid' AND amount_paid = amount_due"
            " AND number IS NOT NULL")).scalars().all()
        payments = connection.execute(text(
            "SELECT stripe_payment_intent_id FROM kernel_payments WHERE status = 'succeeded'")).scalars().all()
    return {"invoices": len(invoices), "paid": len(invoices & set(paid)),
            "intents": len(intents), "payments": len(intents & set(payments))}

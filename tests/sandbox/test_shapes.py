"""Every object the sandbox serves carries the fields of Stripe's own example of it.

Stripe's examples come from ``fixtures3.json`` of the public stripe/openapi
repository, kept outside the project in ``../shared/stripe/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from . import contract, helpers

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "stripe" / "fixtures3.json"


@pytest.fixture(scope="module")
def examples() -> dict[str, Any]:
    if not FIXTURES.exists():
        pytest.skip(f"Stripe's example objects are not available at {FIXTURES}")
    return json.loads(FIXTURES.read_text())["resources"]


def missing_keys(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Keys of Stripe's example absent from ours, recursing where both sides are objects."""
    if isinstance(ours, list) and isinstance(theirs, list):
        if ours and theirs and isinstance(ours[0], dict) and isinstance(theirs[0], dict):
            return missing_keys(ours[0], theirs[0], f"{path}[0]")
        return []
    if not (isinstance(ours, dict) and isinstance(theirs, dict)):
        return []
    missing = []
    for key, value in theirs.items():
        where = f"{path}.{key}" if path else key
        if key not in ours:
            missing.append(where)
        elif key == "metadata" or (path == "data" and key == "object"):
            continue  # metadata is the user's own; an event's data.object is compared on its own
        else:
            missing.extend(missing_keys(ours[key], value, where))
    return missing


@pytest.fixture(scope="module")
def objects(sandbox_server) -> dict[str, dict[str, Any]]:
    """One of each object the sandbox serves, made through the SDK."""
    from tests.helpers.sandbox import make_client

    helpers.CLOCK = sandbox_server.reset()
    client = make_client(sandbox_server.url)
    pro = helpers.price(client, 9900, "Pro")
    cus = helpers.customer(client)
    sub = helpers.subscribe(client, cus.id, pro.id, expand=["latest_invoice"])
    inv = sub.latest_invoice
    payment = inv.payments.data[0]
    pi = client.v1.payment_intents.retrieve(payment.payment.payment_intent)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    refund = client.v1.refunds.create({"charge": charge.id, "amount": 100})
    schedule = client.v1.subscription_schedules.create({"from_subscription": sub.id})
    seti = client.v1.setup_intents.create({"customer": cus.id, "payment_method": "pm_card_visa", "confirm": True})
    session = client.v1.checkout.sessions.create({
        "mode": "subscription", "line_items": [{"price": pro.id, "quantity": 1}],
        "success_url": "https://portal.test/ok"})
    event = client.v1.events.list({"limit": 1}).data[0]
    return {
        "customer": client.v1.customers.retrieve(cus.id).to_dict(),
        "product": client.v1.products.retrieve(pro.product).to_dict(),
        "price": pro.to_dict(),
        "payment_method": client.v1.payment_methods.retrieve(cus.invoice_settings.default_payment_method).to_dict(),
        "setup_intent": seti.to_dict(),
        "checkout.session": session.to_dict(),
        "subscription": client.v1.subscriptions.retrieve(sub.id).to_dict(),
        "subscription_item": client.v1.subscription_items.retrieve(sub["items"].data[0].id).to_dict(),
        "subscription_schedule": schedule.to_dict(),
        "invoice": client.v1.invoices.retrieve(inv.id).to_dict(),
        "line_item": inv.lines.data[0].to_dict(),
        "invoice_payment": client.v1.invoice_payments.retrieve(payment.id).to_dict(),
        "payment_intent": pi.to_dict(),
        "charge": client.v1.charges.retrieve(charge.id).to_dict(),
        "refund": refund.to_dict(),
        "event": event.to_dict(),
        "test_helpers.test_clock": client.v1.test_helpers.test_clocks.retrieve(helpers.CLOCK).to_dict(),
    }


TYPES = ["customer", "product", "price", "payment_method", "setup_intent", "checkout.session", "subscription",
         "subscription_item", "subscription_schedule", "invoice", "line_item", "invoice_payment", "payment_intent",
         "charge", "refund", "event", "test_helpers.test_clock"]


@pytest.mark.parametrize("object_type", TYPES)
def test_object_has_every_field_of_stripes_example(examples, objects, object_type):
    ours = objects[object_type]
    assert ours["object"] == examples[object_type]["object"]
    # The example may be from an older API version than the SDK's: what the SDK no longer
    # declares (``invoice.subscription``) is not expected.
    declared = contract.fields(contract.class_for(object_type))
    assert [key for key in missing_keys(ours, examples[object_type]) if key.split(".")[0] in declared] == []


def test_event_payloads_have_the_shape_of_their_object(examples, objects):
    payload = objects["event"]["data"]["object"]
    declared = contract.fields(contract.class_for(payload["object"]))
    assert [key for key in missing_keys(payload, examples[payload["object"]])
            if key.split(".")[0] in declared] == []


def test_current_api_version_places(objects):
    sub, inv = objects["subscription"], objects["invoice"]
    assert "current_period_end" not in sub and "current_period_end" in sub["items"]["data"][0]
    assert inv["parent"]["type"] == "subscription_details"
    assert inv["parent"]["subscription_details"]["subscription"] == sub["id"]
    line = objects["line_item"]
    assert line["parent"]["subscription_item_details"]["proration"] is False
    assert line["pricing"]["price_details"]["price"] == sub["items"]["data"][0]["price"]["id"]

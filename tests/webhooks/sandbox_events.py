"""Reading the events the sandbox emitted, to feed them to the endpoint as Stripe would deliver them."""
from __future__ import annotations

from typing import Any, Optional

import requests

from billing.models import App
from portal.extensions import db
from portal.payments import gateway


def emitted_events(sandbox_url: str, types: Optional[set[str]] = None) -> list[dict[str, Any]]:
    """Every event the sandbox recorded since its reset, oldest first (optionally only some types)."""
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = requests.get(f"{sandbox_url}/v1/events", params=params, timeout=10,
                            headers={"Authorization": "Bearer sk_test_sandbox"}).json()
        events.extend(page["data"])
        if not page["has_more"]:
            break
        params["starting_after"] = page["data"][-1]["id"]
    events.reverse()
    return [e for e in events if types is None or e["type"] in types]


def subscribe(app, app_id: int, plan_code: str = "pro", card: str = "pm_card_visa") -> str:
    """Create the app's Stripe customer and a subscription paid with ``card`` (no Checkout); its id."""
    with app.app_context():
        tenant = db.session.get(App, app_id)
        customer = gateway().create_customer(app_id=app_id, email="owner@acme.test", name=tenant.name)
        tenant.stripe_customer_id = customer.id
        db.session.commit()
        method = gateway().attach_payment_method(customer.id, card)
        gateway().set_default_payment_method(customer.id, method.payment_method_id)
        from billing.plans import plan_by_code
        price = plan_by_code(db.session, plan_code).stripe_price_id
        return gateway().create_subscription(customer_id=customer.id, price_id=price, app_id=app_id, attempt="t",
                                             payment_method_id=method.payment_method_id).id

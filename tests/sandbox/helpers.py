"""Small builders shared by the sandbox tests."""

from __future__ import annotations

import calendar
from datetime import datetime, timezone
from typing import Any

import requests
import stripe

DAY = 86400
# A renewal invoice is a draft for an hour, then finalized and charged: advance past that to see the charge.
AFTER_RENEWAL = 3600 + 60
# The test clock of the running test (the sandbox fixture's ``clock_id``): customers made by
# ``customer()`` live on it, so ``sandbox.advance()`` moves their time, as a test clock does in Stripe.
CLOCK: str | None = None


def price(client: stripe.StripeClient, amount: int, name: str = "Pro", currency: str = "brl",
          interval: str = "month", **extra: Any) -> stripe.Price:
    product = client.v1.products.create({"name": name})
    params: dict[str, Any] = {"product": product.id, "unit_amount": amount, "currency": currency,
                              "recurring": {"interval": interval}}
    params.update(extra)
    return client.v1.prices.create(params)


def customer(client: stripe.StripeClient, pm: str | None = "pm_card_visa", email: str = "owner@example.com"
             ) -> stripe.Customer:
    """A customer whose default payment method is a new card made from a magic test id."""
    params: dict[str, Any] = {"email": email}
    if CLOCK:
        params["test_clock"] = CLOCK
    cus = client.v1.customers.create(params)
    if pm:
        card = client.v1.payment_methods.attach(pm, {"customer": cus.id})
        cus = client.v1.customers.update(cus.id, {"invoice_settings": {"default_payment_method": card.id}})
    return cus


def subscribe(client: stripe.StripeClient, cus: str, price_id: str, **extra: Any) -> stripe.Subscription:
    params: dict[str, Any] = {"customer": cus, "items": [{"price": price_id}]}
    params.update(extra)
    return client.v1.subscriptions.create(params)


def next_month_start_with_days(now: int, days: int = 30) -> int:
    """Midnight UTC of the next first-of-month whose month has ``days`` days."""
    moment = datetime.fromtimestamp(now, tz=timezone.utc)
    year, month = moment.year, moment.month
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        if calendar.monthrange(year, month)[1] == days:
            return int(datetime(year, month, 1, tzinfo=timezone.utc).timestamp())


def period(sub: Any) -> tuple[int, int]:
    item = sub["items"]["data"][0]
    return item["current_period_start"], item["current_period_end"]


def events(client: stripe.StripeClient, type: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Events oldest first."""
    params: dict[str, Any] = {"limit": limit}
    if type:
        params["type"] = type
    listed = client.v1.events.list(params)
    return [e.to_dict() for e in reversed(listed.data)]


def event_types(client: stripe.StripeClient) -> list[str]:
    return [e["type"] for e in events(client)]


def raw(sandbox: Any, method: str, path: str, data: Any = None, key: str = "sk_test_sandbox",
        headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
    """A request without the SDK, to look at exactly what goes over the wire."""
    all_headers = {"Authorization": f"Bearer {key}"} if key else {}
    all_headers.update(headers or {})
    return requests.request(method, sandbox.url + path, data=data, headers=all_headers, timeout=30, **kwargs)


def clock(client: stripe.StripeClient, frozen_time: int, name: str = "sandbox-test") -> Any:
    """A new test clock frozen at ``frozen_time``; customers created with ``test_clock`` live on it."""
    return client.v1.test_helpers.test_clocks.create({"frozen_time": frozen_time, "name": name})


def advance(client: stripe.StripeClient, clock_id: str, to: int, timeout: float = 30.0) -> Any:
    """Advance a test clock and wait until it is ``ready``, as against Stripe."""
    from sandbox.testing import wait_until_ready

    client.v1.test_helpers.test_clocks.advance(clock_id, {"frozen_time": to})
    return wait_until_ready(lambda: client.v1.test_helpers.test_clocks.retrieve(clock_id).to_dict(), timeout)

"""Every answer and every event of realistic flows, checked against the SDK's own declarations.

The checks live in ``tests/sandbox/contract.py`` and read the installed ``stripe`` package's
generated classes at run time: bump the pin and this test checks the sandbox against the new
version. A recording HTTP client keeps the raw JSON of every answer the SDK received.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import stripe

from . import contract, helpers
from .helpers import DAY

GOOD = {"cardNumber": "4242 4242 4242 4242", "cardExpiry": "12 / 34", "cardCvc": "123",
        "billingName": "Ana Souza", "email": "owner@example.com"}


class RecordingClient(stripe.RequestsClient):
    """The SDK's own HTTP client, keeping what each request answered."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[tuple[str, str, int, Any]] = []

    def request(self, method, url, headers, post_data=None):
        content, status, response_headers = super().request(method, url, headers, post_data)
        self.answers.append((method.upper(), url, status, json.loads(content)))
        return content, status, response_headers


@pytest.fixture
def recorder():
    return RecordingClient()


@pytest.fixture
def client(sandbox, recorder):
    return stripe.StripeClient(api_key="sk_test_contract", http_client=recorder, max_network_retries=0,
                               base_addresses={"api": sandbox.url, "files": sandbox.url, "connect": sandbox.url})


def test_the_contract_checker_catches_each_kind_of_difference():
    """The checker itself: each kind of drift the issue names is reported."""
    invoice = {"object": "invoice", "id": "in_1", "subscription": None}
    assert any("subscription: property not declared" in p for p in contract.problems(invoice))
    assert any(p.startswith("$.id: null") for p in contract.problems({"object": "invoice", "id": None}))
    assert any("'sometimes' is not one of" in p for p in contract.problems(
        {"object": "checkout.session", "ui_mode": "sometimes"}))
    assert any("is not a int" in p for p in contract.problems({"object": "invoice", "amount_due": "10"}))
    assert any("pause_schedules: missing" in p for p in contract.problems({"object": "subscription_schedule"}))
    listed = {"object": "list", "data": [], "has_more": False, "url": "/v1/x", "total_count": 0}
    assert any("total_count" in p for p in contract.problems({"object": "subscription", "items": listed}))
    assert any("null in an error body" in p for p in contract.problems(
        {"error": {"type": "invalid_request_error", "message": "x", "code": None}}))
    event = {"object": "event", "id": "evt_1", "type": "payment_intent.updated", "created": 1, "livemode": False,
             "pending_webhooks": 0, "data": {"object": {"object": "payment_intent", "id": "pi_1"}}}
    assert any("'payment_intent.updated' is not one of" in p for p in contract.event_problems(event))


def _flows(client: stripe.StripeClient, sandbox, recorder: RecordingClient) -> None:
    pro = helpers.price(client, 9900, "Pro")
    enterprise = helpers.price(client, 49900, "Enterprise")
    clock = helpers.clock(client, helpers.next_month_start_with_days(sandbox.now(), 30))

    # Checkout: a subscription paid on the hosted page, with the objects it made expanded.
    cus = client.v1.customers.create({
        "email": "owner@example.com", "test_clock": clock.id, "preferred_locales": ["pt-BR"],
        "address": {"line1": "Rua Augusta 1", "city": "São Paulo", "state": "SP", "postal_code": "01305-000",
                    "country": "BR"}, "tax_id_data": [{"type": "br_cnpj", "value": "12.345.678/0001-95"}]})
    session = client.v1.checkout.sessions.create({
        "mode": "subscription", "customer": cus.id, "line_items": [{"price": pro.id, "quantity": 1}],
        "success_url": "https://portal.test/done?s={CHECKOUT_SESSION_ID}", "cancel_url": "https://portal.test/"})
    assert requests.post(session.url, data=GOOD, allow_redirects=False, timeout=30).status_code == 303
    done = client.v1.checkout.sessions.retrieve(session.id, {"expand": ["subscription", "invoice", "customer"]})
    client.v1.checkout.sessions.line_items.list(session.id)
    sub = client.v1.subscriptions.retrieve(done.subscription.id, {"expand": ["latest_invoice.payments",
                                                                             "default_payment_method"]})
    client.v1.customers.retrieve(cus.id, {"expand": ["subscriptions", "tax_ids",
                                                     "invoice_settings.default_payment_method"]})

    # Upgrade with proration: the preview, then the change charged now.
    start, _ = helpers.period(sub)
    helpers.advance(client, clock.id, start + 15 * DAY)
    item = sub["items"].data[0].id
    client.v1.invoices.create_preview({"customer": cus.id, "subscription": sub.id, "subscription_details": {
        "items": [{"id": item, "price": enterprise.id}], "proration_behavior": "always_invoice",
        "proration_date": start + 15 * DAY}})
    upgraded = client.v1.subscriptions.update(sub.id, {
        "items": [{"id": item, "price": enterprise.id}], "proration_behavior": "always_invoice",
        "proration_date": start + 15 * DAY, "payment_behavior": "error_if_incomplete", "expand": ["latest_invoice"]})
    client.v1.invoices.line_items.list(upgraded.latest_invoice.id)
    client.v1.invoice_payments.list({"invoice": upgraded.latest_invoice.id})

    # Schedule: back to Pro at the period end, then the renewal on the test clock.
    schedule = client.v1.subscription_schedules.create({"from_subscription": sub.id})
    _, end = helpers.period(upgraded)
    client.v1.subscription_schedules.update(schedule.id, {"end_behavior": "release", "proration_behavior": "none",
                                                          "phases": [
        {"items": [{"price": enterprise.id, "quantity": 1}], "start_date": start, "end_date": end},
        {"items": [{"price": pro.id, "quantity": 1}], "duration": {"interval": "month", "interval_count": 1}}]})
    helpers.advance(client, clock.id, end + 2 * 3600)
    client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    client.v1.subscription_schedules.retrieve(schedule.id)
    client.v1.invoices.list({"customer": cus.id})
    client.v1.test_helpers.test_clocks.list()

    # A declined renewal card, and a card declined at attach.
    failing = client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": cus.id})
    client.v1.subscriptions.update(sub.id, {"default_payment_method": failing.id})
    helpers.advance(client, clock.id, end + 31 * DAY + 2 * 3600)
    latest = client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice.payments.data.payment."
                                                                  "payment_intent"]})
    with pytest.raises(stripe.CardError):
        client.v1.invoices.pay(latest.latest_invoice.id, {"off_session": True})
    with pytest.raises(stripe.CardError):
        client.v1.payment_methods.attach("pm_card_chargeDeclined", {"customer": cus.id})

    # A one-off charge, refunded in part, and the lists around it.
    pi = client.v1.payment_intents.create({"amount": 5000, "currency": "brl", "customer": cus.id,
                                           "payment_method": "pm_card_visa", "confirm": True, "off_session": True})
    refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 1000, "reason": "requested_by_customer"})
    client.v1.refunds.retrieve(refund.id)
    client.v1.charges.retrieve(pi.latest_charge, {"expand": ["refunds"]})
    client.v1.charges.list({"payment_intent": pi.id})
    client.v1.invoice_items.create({"customer": cus.id, "amount": 700, "currency": "brl", "description": "Setup"})
    client.v1.invoice_items.list({"customer": cus.id})
    client.v1.subscriptions.cancel(sub.id)

    # Errors: unknown parameters on every method, bad enums, missing objects.
    for call in (lambda: client.v1.customers.retrieve(cus.id, {"bogus": "1"}),
                 lambda: client.v1.customers.create({"bogus": "1"}),
                 lambda: client.v1.checkout.sessions.create({"mode": "sometimes"}),
                 lambda: client.v1.invoices.retrieve("in_missing")):
        with pytest.raises(stripe.InvalidRequestError):
            call()
    for method in ("GET", "DELETE"):
        answer = requests.request(method, f"{sandbox.url}/v1/customers/{cus.id}", params={"bogus": "1"},
                                  headers={"Authorization": "Bearer sk_test_x"}, timeout=10)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "parameter_unknown"
        recorder.answers.append((method, answer.url, answer.status_code, answer.json()))


def test_every_answer_and_event_matches_the_sdk_declarations(client, recorder, sandbox):
    _flows(client, sandbox, recorder)
    found: list[str] = []
    for method, url, status, body in recorder.answers:
        found += [f"{method} {url.split('/v1', 1)[-1]} ({status}) {p}" for p in contract.problems(body)]
    # Every event, as the JSON the sandbox sent (the SDK's to_dict() would turn decimals into Decimal).
    events: list[dict[str, Any]] = []
    listed = len(recorder.answers)
    page = client.v1.events.list({"limit": 100})
    while page.has_more:
        page = client.v1.events.list({"limit": 100, "starting_after": page.data[-1].id})
    for _, _, _, body in recorder.answers[listed:]:
        events += body["data"]
    assert len(events) > 40
    for event in events:
        found += contract.event_problems(event)
    assert not found, "\n".join(sorted(set(found)))

"""Events and signed webhook delivery with retries."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe

from sandbox.testing import SandboxProcess

from . import helpers
from tests.helpers.sandbox import make_client


class Receiver:
    """A tiny local webhook receiver that can be told to fail the first N requests."""

    def __init__(self, fail_first: int = 0, status: int = 500) -> None:
        self.fail_first, self.status = fail_first, status
        self.received: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                with receiver.lock:
                    failing = receiver.fail_first > 0
                    if failing:
                        receiver.fail_first -= 1
                    receiver.received.append({"body": body, "headers": dict(self.headers), "at": time.time(),
                                              "answered": receiver.status if failing else 200})
                self.send_response(receiver.status if failing else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/stripe"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} deliveries, got {len(self.received)}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def test_events_carry_request_and_previous_attributes(stripe_client):
    cus = stripe_client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "evt-1"})
    stripe_client.v1.customers.update(cus.id, {"name": "Ana", "metadata": {"tier": "pro"}})
    created, updated = helpers.events(stripe_client)
    assert created["type"] == "customer.created" and created["api_version"] == "2026-10-28.endive"
    assert created["request"]["idempotency_key"] == "evt-1" and created["request"]["id"].startswith("req_")
    assert created["data"]["object"]["id"] == cus.id and created["livemode"] is False
    assert updated["data"]["previous_attributes"] == {"name": None, "metadata": {"tier": None}}
    assert updated["data"]["object"]["name"] == "Ana"
    assert stripe_client.v1.events.retrieve(updated["id"]).type == "customer.updated"


def test_event_list_filters(stripe_client, sandbox):
    stripe_client.v1.customers.create({"test_clock": sandbox.clock_id})
    sandbox.advance(seconds=100)
    cut = sandbox.now()
    later = stripe_client.v1.customers.create({"test_clock": sandbox.clock_id})  # created on the clock's time
    stripe_client.v1.products.create({"name": "x"})
    assert [e.type for e in stripe_client.v1.events.list({"type": "customer.*"}).data] == ["customer.created"] * 2
    both = stripe_client.v1.events.list({"types": ["customer.created", "product.created"]}).data
    assert sorted(e.type for e in both) == ["customer.created", "customer.created", "product.created"]
    recent = stripe_client.v1.events.list({"created": {"gte": cut}, "type": "customer.created"}).data
    assert [e.data.object.id for e in recent] == [later.id]


def test_webhooks_are_signed_and_in_order(stripe_client, sandbox, receiver):
    endpoint = stripe_client.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["*"]})
    assert endpoint.secret.startswith("whsec_")
    assert "secret" not in stripe_client.v1.webhook_endpoints.retrieve(endpoint.id)
    pro = helpers.price(stripe_client, 9900)
    helpers.subscribe(stripe_client, helpers.customer(stripe_client).id, pro.id)
    sandbox.wait_for_deliveries()
    expected = [e["id"] for e in helpers.events(stripe_client)]
    got = receiver.wait_for(len(expected))
    assert [json.loads(r["body"])["id"] for r in got] == expected
    for request in got:
        assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"
        event = stripe.Webhook.construct_event(request["body"], request["headers"]["Stripe-Signature"],
                                               endpoint.secret)
        stripe.WebhookSignature.verify_header(request["body"], request["headers"]["Stripe-Signature"],
                                              endpoint.secret, tolerance=300)
        assert event.id
        timestamp = int(request["headers"]["Stripe-Signature"].split(",")[0][2:])
        assert abs(timestamp - time.time()) < 60  # wall time, even if the sandbox clock moved
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(got[0]["body"], got[0]["headers"]["Stripe-Signature"], "whsec_wrong")


def test_enabled_events_filter(stripe_client, sandbox, receiver):
    stripe_client.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["product.created"]})
    stripe_client.v1.customers.create({})
    stripe_client.v1.products.create({"name": "only this"})
    sandbox.wait_for_deliveries()
    assert [json.loads(r["body"])["type"] for r in receiver.wait_for(1)] == ["product.created"]


def test_failed_deliveries_are_retried_with_backoff(stripe_client, sandbox):
    flaky = Receiver(fail_first=2, status=500)
    try:
        stripe_client.v1.webhook_endpoints.create({"url": flaky.url, "enabled_events": ["customer.created"]})
        cus = stripe_client.v1.customers.create({})
        got = flaky.wait_for(3)
        assert [r["answered"] for r in got] == [500, 500, 200]
        assert len({json.loads(r["body"])["id"] for r in got}) == 1
        gaps = [b["at"] - a["at"] for a, b in zip(got, got[1:])]
        # base 0.1 s (see conftest): ~0.1 then ~0.2 seconds
        assert gaps[0] >= 0.08 and gaps[1] >= 0.18 and gaps[1] > gaps[0]
        sandbox.wait_for_deliveries()
        attempts = sandbox.deliveries(type="customer.created")
        assert [(a["attempt"], a["status"], a["outcome"]) for a in attempts] == [
            (1, 500, "retrying"), (2, 500, "retrying"), (3, 200, "delivered")]
        assert json.loads(got[0]["body"])["data"]["object"]["id"] == cus.id
    finally:
        flaky.close()


def test_deliveries_give_up_after_max_attempts(stripe_client, sandbox):
    down = Receiver(fail_first=100, status=503)
    try:
        stripe_client.v1.webhook_endpoints.create({"url": down.url, "enabled_events": ["customer.created"]})
        stripe_client.v1.customers.create({})
        sandbox.wait_for_deliveries(timeout=15)
        attempts = sandbox.deliveries()
        assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]  # max attempts is 4 in conftest
        assert attempts[-1]["outcome"] == "gave_up"
    finally:
        down.close()


def test_connection_errors_are_recorded(stripe_client, sandbox):
    stripe_client.v1.webhook_endpoints.create({"url": "http://127.0.0.1:9/unreachable",
                                               "enabled_events": ["customer.created"]})
    stripe_client.v1.customers.create({})
    sandbox.wait_for_deliveries(timeout=15)
    attempts = sandbox.deliveries()
    assert attempts and attempts[0]["status"] is None and attempts[0]["error"]


def test_delivery_does_not_block_the_api(stripe_client, sandbox):
    slow = Receiver()
    original = slow.server.RequestHandlerClass.do_POST

    def sleepy(handler):
        time.sleep(1.0)
        original(handler)

    slow.server.RequestHandlerClass.do_POST = sleepy
    try:
        stripe_client.v1.webhook_endpoints.create({"url": slow.url, "enabled_events": ["*"]})
        for _ in range(3):
            stripe_client.v1.customers.create({})
            stripe_client.v1.customers.list()
        # Each delivery takes the receiver a second: the API answered all six calls while
        # deliveries were still under way, so it never waited for them.
        assert sandbox.pending_deliveries() > 0
    finally:
        slow.close()


def test_command_line_endpoint_survives_reset():
    receiver = Receiver()
    secret = "whsec_commandlinesecret123"
    try:
        with SandboxProcess(webhook_url=receiver.url, webhook_secret=secret, webhook_retry_base=0.05) as server:
            client = make_client(server.url)
            server.reset()
            client.v1.customers.create({"email": "cli@example.com"})
            got = receiver.wait_for(1)
            event = stripe.Webhook.construct_event(got[0]["body"], got[0]["headers"]["Stripe-Signature"], secret)
            assert event.type == "customer.created"
            assert [e.url for e in client.v1.webhook_endpoints.list().data] == [receiver.url]
    finally:
        receiver.close()

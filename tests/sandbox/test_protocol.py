"""Auth, error shapes, idempotency, request ids, and the control endpoints."""

from __future__ import annotations

import threading
import time

import pytest
import requests
import stripe

from tests.helpers.sandbox import make_client
from . import helpers


@pytest.mark.parametrize("key", [None, "sk_live_abc123456789", "pk_test_abc", "rk_test_123"])
def test_v1_requires_a_test_secret_key(sandbox, key):
    response = helpers.raw(sandbox, "GET", "/v1/customers", key=key)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["Request-Id"].startswith("req_")


def test_sdk_raises_authentication_error(sandbox):
    client = stripe.StripeClient(api_key="sk_live_nope", base_addresses={"api": sandbox.url},
                                 max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError):
        client.v1.customers.list()


def test_every_response_has_a_request_id(sandbox):
    ids = {helpers.raw(sandbox, "GET", "/v1/customers").headers["Request-Id"] for _ in range(3)}
    assert len(ids) == 3
    for path in ("/v1/customers/cus_missing", "/_sandbox/health", "/checkout/cs_test_missing"):
        assert helpers.raw(sandbox, "GET", path).headers["Request-Id"].startswith("req_")


def test_missing_object_is_resource_missing_404(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe_client.v1.customers.retrieve("cus_doesnotexist")
    assert raised.value.http_status == 404
    assert raised.value.code == "resource_missing"
    assert raised.value.user_message == "No such customer: 'cus_doesnotexist'"


def test_missing_and_unknown_params_are_400(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.prices.create({"product": stripe_client.v1.products.create({"name": "x"}).id,
                                        "unit_amount": 100})
    assert missing.value.http_status == 400
    assert missing.value.code == "parameter_missing" and missing.value.param == "currency"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.customers.create({"emial": "typo@example.com"})
    assert unknown.value.code == "parameter_unknown" and unknown.value.param == "emial"


def test_unknown_url_is_stripe_shaped_404(sandbox):
    response = helpers.raw(sandbox, "GET", "/v1/no_such_thing")
    assert response.status_code == 404
    assert "Unrecognized request URL" in response.json()["error"]["message"]


def test_idempotent_replay_returns_first_answer_without_side_effects(sandbox, stripe_client):
    first = helpers.raw(sandbox, "POST", "/v1/customers", data={"email": "a@example.com"},
                        headers={"Idempotency-Key": "key-1"})
    second = helpers.raw(sandbox, "POST", "/v1/customers", data={"email": "a@example.com"},
                         headers={"Idempotency-Key": "key-1"})
    assert second.status_code == first.status_code == 200
    assert second.text == first.text
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(stripe_client.v1.customers.list().data) == 1
    assert helpers.event_types(stripe_client) == ["customer.created"]


def test_idempotency_through_the_sdk(stripe_client):
    options = {"idempotency_key": "create-customer-7"}
    one = stripe_client.v1.customers.create({"email": "x@example.com"}, options)
    two = stripe_client.v1.customers.create({"email": "x@example.com"}, options)
    assert one.id == two.id
    assert two.last_response.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError) as conflict:
        stripe_client.v1.customers.create({"email": "other@example.com"}, options)
    assert conflict.value.http_status == 400
    assert "same parameters" in conflict.value.user_message
    assert len(stripe_client.v1.customers.list().data) == 1


def test_errors_are_replayed_but_not_server_errors(sandbox, stripe_client):
    bad = helpers.raw(sandbox, "POST", "/v1/customers", data={"bogus": "1"}, headers={"Idempotency-Key": "k-err"})
    again = helpers.raw(sandbox, "POST", "/v1/customers", data={"bogus": "1"}, headers={"Idempotency-Key": "k-err"})
    assert bad.status_code == again.status_code == 400
    assert again.headers.get("Idempotent-Replayed") == "true"
    sandbox.fail(1, status=500)
    failed = helpers.raw(sandbox, "POST", "/v1/customers", data={"email": "a@b.co"},
                         headers={"Idempotency-Key": "k-500"})
    assert failed.status_code == 500
    retried = helpers.raw(sandbox, "POST", "/v1/customers", data={"email": "a@b.co"},
                          headers={"Idempotency-Key": "k-500"})
    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers


def test_card_declines_replay_without_a_second_attempt(sandbox, stripe_client):
    cus = stripe_client.v1.customers.create({})
    params = {"amount": "5000", "currency": "brl", "customer": cus.id, "payment_method": "pm_card_chargeCustomerFail",
              "confirm": "true"}
    first = helpers.raw(sandbox, "POST", "/v1/payment_intents", data=params, headers={"Idempotency-Key": "pay-1"})
    second = helpers.raw(sandbox, "POST", "/v1/payment_intents", data=params, headers={"Idempotency-Key": "pay-1"})
    assert first.status_code == second.status_code == 402
    assert second.text == first.text
    assert len(stripe_client.v1.charges.list().data) == 1


def test_concurrent_requests_with_one_key_run_once(sandbox, stripe_client):
    answers = []

    def post():
        answers.append(helpers.raw(sandbox, "POST", "/v1/customers", data={"email": "race@example.com"},
                                   headers={"Idempotency-Key": "race"}).json()["id"])

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(answers)) == 1
    assert len(stripe_client.v1.customers.list().data) == 1


def test_fail_control_injects_server_errors(sandbox, stripe_client):
    sandbox.fail(2, status=503)
    for _ in range(2):
        with pytest.raises(stripe.APIError) as raised:
            stripe_client.v1.customers.list()
        assert raised.value.http_status == 503
    assert stripe_client.v1.customers.list().data == []


def test_fail_control_delays(sandbox):
    sandbox.fail(1, delay_seconds=0.6)
    client = stripe.StripeClient(api_key="sk_test_x", base_addresses={"api": sandbox.url},
                                 max_network_retries=0,
                                 http_client=stripe.RequestsClient(timeout=0.3))
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.list()
    # The delay was for one request only: the next answers well within a generous timeout.
    patient = stripe.StripeClient(api_key="sk_test_x", base_addresses={"api": sandbox.url},
                                  max_network_retries=0, http_client=stripe.RequestsClient(timeout=5))
    assert patient.v1.customers.list().data == []


def test_stats_count_requests_per_endpoint(sandbox, stripe_client):
    sandbox.clear_stats()
    stripe_client.v1.customers.create({"email": "s@example.com"})
    stripe_client.v1.customers.list()
    stripe_client.v1.customers.list()
    stats = sandbox.stats()
    assert stats["by_endpoint"] == {"GET /v1/customers": 2, "POST /v1/customers": 1}
    assert stats["total"] == 3


def test_reset_empties_everything_and_makes_a_fresh_clock(sandbox, stripe_client):
    stripe_client.v1.customers.create({"email": "gone@example.com", "test_clock": sandbox.clock_id})
    old_clock = sandbox.clock_id
    sandbox.advance(seconds=10 * helpers.DAY)
    assert sandbox.now() > time.time() + 9 * helpers.DAY
    sandbox.reset()
    assert stripe_client.v1.customers.list().data == []
    assert stripe_client.v1.events.list().data == []
    assert [c.id for c in stripe_client.v1.test_helpers.test_clocks.list().data] == [sandbox.clock_id] != [old_clock]
    assert abs(sandbox.now() - time.time()) < 5


def test_health_is_open_and_json(sandbox):
    health = requests.get(sandbox.url + "/_sandbox/health", timeout=5).json()
    assert health["status"] == "ok" and health["api_version"] == "2026-10-28.endive"


def test_in_process_thread_helper_and_sdk_options(tmp_path):
    from sandbox.testing import SandboxThread

    with SandboxThread(str(tmp_path / "thread.sqlite3")) as server:
        client = stripe.StripeClient(**server.sdk_options())
        cus = client.v1.customers.create({"email": "thread@example.com"})
        assert client.v1.customers.retrieve(cus.id).email == "thread@example.com"
        assert client.v1.test_helpers.test_clocks.list().data == []
        clock_id = server.reset()
        assert [c.id for c in client.v1.test_helpers.test_clocks.list().data] == [clock_id]
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.test_helpers.test_clocks.advance(clock_id, {"frozen_time": server.now() - 100})
    assert (tmp_path / "thread.sqlite3").exists()


def test_command_line_defaults(tmp_path, monkeypatch):
    from sandbox.__main__ import parse_args

    monkeypatch.delenv("SANDBOX_DB", raising=False)
    args = parse_args([])
    assert (args.host, args.port, args.db) == ("127.0.0.1", 12111, "instance/sandbox.sqlite3")
    monkeypatch.setenv("SANDBOX_DB", str(tmp_path / "x.sqlite3"))
    monkeypatch.setenv("SANDBOX_WEBHOOK_URL", "http://127.0.0.1:1/hook")
    monkeypatch.setenv("STRIPE_KERNEL_WEBHOOK_SECRET", "whsec_abc")
    args = parse_args([])
    assert (args.db, args.webhook_url, args.webhook_secret) == (str(tmp_path / "x.sqlite3"),
                                                                 "http://127.0.0.1:1/hook", "whsec_abc")


def test_concurrent_writers_all_succeed(sandbox, stripe_client):
    failures = []

    def work(worker):
        client = make_client(sandbox.url)
        for n in range(10):
            try:
                client.v1.customers.create({"email": f"w{worker}-{n}@example.com"})
            except stripe.StripeError as error:  # pragma: no cover - the assertion below reports it
                failures.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(list(stripe_client.v1.customers.list({"limit": 100}).auto_paging_iter())) == 80

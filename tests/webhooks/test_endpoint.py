"""POST /webhooks/kernel/stripe: bad input answers 400/413 and writes nothing; good events are recorded once."""
import time

import pytest
from redis import Redis

from billing.models import AppSubscription, ProcessedWebhook, WebhookStatus
from billing.webhooks.signature import header_for
from tests.helpers.data import audit_actions_of_event, count, webhook_row
from tests.helpers.webhooks import apply_due
from tests.webhooks.helpers import OLD_SECRET, SECRET, body, event, post, signed_headers, subscription

URL = "/webhooks/kernel/stripe"


def rejected(app, reason: str) -> int:
    return int(Redis.from_url(app.config["REDIS_URL"]).get(f"webhooks:rejected:{reason}") or 0)


def a_subscription_event(**kwargs):
    return event("customer.subscription.created", subscription(sub_id=kwargs.pop("sub_id", "sub_new")), **kwargs)


def test_a_valid_event_is_recorded_processed_and_acknowledged(app, client, acme):
    payload = a_subscription_event(created=1_785_600_000)
    response = post(client, payload)
    assert response.status_code == 200 and response.json == {"received": True}
    row = webhook_row(app, payload["id"])
    assert (row.type, row.object_id, row.created, row.livemode) == (
        "customer.subscription.created", "sub_new", 1_785_600_000, False)
    assert row.payload == body(payload).decode() and row.received_at is not None
    # RQ_ASYNC is off in tests, so the job ran in-process before the answer
    assert row.status == WebhookStatus.PROCESSED and row.attempts == 1 and row.processed_at is not None
    assert count(app, AppSubscription, AppSubscription.stripe_subscription_id == "sub_new") == 1
    assert audit_actions_of_event(app, payload["id"]) == ["subscription.created"]


def test_the_previous_secret_still_works_during_a_rotation(app, client, acme):
    payload = a_subscription_event()
    assert post(client, payload, secret=OLD_SECRET).status_code == 200
    assert webhook_row(app, payload["id"]) is not None


BAD_SIGNATURES = {
    "missing_signature": lambda raw: {},
    "malformed_signature": lambda raw: {"Stripe-Signature": "garbage"},
    "bad_signature": lambda raw: {"Stripe-Signature": header_for("whsec_not_ours", raw)},
    "stale_signature": lambda raw: {"Stripe-Signature": header_for(SECRET, raw, int(time.time()) - 301)},
}


@pytest.mark.parametrize("reason", list(BAD_SIGNATURES))
def test_a_bad_signature_is_refused_and_writes_nothing(app, client, acme, reason):
    raw = body(a_subscription_event())
    before = rejected(app, reason)
    response = client.post(URL, data=raw, headers=BAD_SIGNATURES[reason](raw))
    assert response.status_code == 400 and response.json["error"]["reason"] == reason
    assert count(app, ProcessedWebhook) == 0 and count(app, AppSubscription) == 0
    assert rejected(app, reason) == before + 1


@pytest.mark.parametrize("raw,reason", [
    (b"{not json", "malformed_json"),
    (b"\xff\xfe", "malformed_json"),
    (b"[]", "malformed_event"),
    (body({"object": "event", "type": "invoice.paid", "created": 1, "livemode": False, "data": {"object": {}}}),
     "malformed_event"),  # no id
    (body({"id": "evt_1", "type": "invoice.paid", "livemode": False, "data": {"object": {}}}), "malformed_event"),
    (body({"id": "evt_1", "type": "invoice.paid", "created": 1, "data": {"object": {}}}), "malformed_event"),
    (body({"id": "evt_1", "type": "invoice.paid", "created": 1, "livemode": False, "data": {}}), "malformed_event"),
    (body({"id": "evt_1", "created": 1, "livemode": False, "data": {"object": {}}}), "malformed_event"),
    (body({"id": "evt_1 OR 1=1", "type": "invoice.paid", "created": 1, "livemode": False,
           "data": {"object": {}}}), "malformed_event"),
])
def test_signed_but_malformed_bodies_are_refused_and_write_nothing(app, client, raw, reason):
    before = rejected(app, reason)
    response = client.post(URL, data=raw, headers=signed_headers(raw))
    assert response.status_code == 400 and response.json["error"]["reason"] == reason
    assert count(app, ProcessedWebhook) == 0
    assert rejected(app, reason) == before + 1


def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(app, client):
    raw = body(event("invoice.paid", {"id": "in_1", "padding": "x" * (256 * 1024)}))
    before = rejected(app, "too_large")
    response = client.post(URL, data=raw, headers=signed_headers(raw))
    assert response.status_code == 413 and response.json["error"]["reason"] == "too_large"
    assert count(app, ProcessedWebhook) == 0
    assert rejected(app, "too_large") == before + 1


def test_a_duplicate_is_acknowledged_and_processed_once(app, client, acme):
    payload = a_subscription_event()
    duplicates = int(Redis.from_url(app.config["REDIS_URL"]).get("webhooks:duplicates") or 0)
    for _ in range(3):
        assert post(client, payload).status_code == 200
    assert count(app, ProcessedWebhook) == 1
    assert webhook_row(app, payload["id"]).attempts == 1
    assert audit_actions_of_event(app, payload["id"]) == ["subscription.created"]
    assert int(Redis.from_url(app.config["REDIS_URL"]).get("webhooks:duplicates")) == duplicates + 2


def test_an_event_of_the_other_mode_is_recorded_and_ignored(app, client, acme):
    payload = a_subscription_event(livemode=True)  # the sandbox gateway is test mode
    assert post(client, payload).status_code == 200
    row = webhook_row(app, payload["id"])
    assert row.status == WebhookStatus.IGNORED and row.livemode is True and row.attempts == 0
    assert count(app, AppSubscription) == 0


def test_an_event_about_someone_elses_object_is_recorded_and_ignored(app, client, acme):
    payload = event("customer.subscription.updated", subscription(sub_id="sub_theirs", customer="cus_unknown"))
    assert post(client, payload).status_code == 200
    assert webhook_row(app, payload["id"]).status == WebhookStatus.IGNORED
    assert count(app, AppSubscription) == 0


def test_an_unknown_event_type_is_recorded_and_ignored_not_an_error(app, client):
    payload = event("customer.tax_id.created", {"id": "txi_1", "object": "tax_id"})
    assert post(client, payload).status_code == 200
    row = webhook_row(app, payload["id"])
    assert row.status == WebhookStatus.IGNORED and row.last_error is None


def test_the_endpoint_needs_no_csrf_token(app_config, acme, app):
    app.config["WTF_CSRF_ENABLED"] = True
    payload = a_subscription_event()
    assert post(app.test_client(), payload).status_code == 200
    assert webhook_row(app, payload["id"]).status == WebhookStatus.PROCESSED


def test_signed_deliveries_are_rate_limited_per_sender_and_the_refused_one_is_not_recorded(app, client):
    app.config["WEBHOOK_RATE_LIMIT"] = "3 per minute"
    sender = {"REMOTE_ADDR": "203.0.113.9"}
    # Unsigned junk is refused before the limiter: it never eats the allowance of Stripe's own deliveries.
    assert [client.post(URL, data=b"{}", environ_base=sender).status_code for _ in range(4)] == [400] * 4
    payloads = [event("customer.tax_id.created", {"id": f"txi_{i}", "object": "tax_id"}) for i in range(4)]
    before = rejected(app, "rate_limited")
    answers = [post(client, payload, environ_base=sender) for payload in payloads]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    refused = answers[3]
    assert refused.json["error"]["reason"] == "rate_limited" and "3 per minute" in refused.json["error"]["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert webhook_row(app, payloads[3]["id"]) is None and count(app, ProcessedWebhook) == 3
    assert rejected(app, "rate_limited") == before + 1
    # another sender has its own allowance
    assert post(client, payloads[3], environ_base={"REMOTE_ADDR": "203.0.113.10"}).status_code == 200


def test_behind_a_trusted_proxy_the_limit_counts_the_client_address(app_config, request):
    app_config["TRUSTED_PROXIES"] = 1
    app = request.getfixturevalue("app")
    app.config["WEBHOOK_RATE_LIMIT"] = "1 per minute"
    client = app.test_client()

    def from_client(address: str):
        return post(client, event("customer.tax_id.created", {"id": "txi_1", "object": "tax_id"}),
                    environ_base={"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": address})

    assert [from_client("198.51.100.1").status_code, from_client("198.51.100.2").status_code] == [200, 200]
    assert from_client("198.51.100.1").status_code == 429


def test_a_valid_event_is_recorded_and_acknowledged_before_any_worker_applies_it(app, client, acme):
    app.config["RQ_ASYNC"] = True
    payload = a_subscription_event()
    assert post(client, payload).status_code == 200
    # The answer did not wait for the handler: the row is the queue, and it waits there.
    assert webhook_row(app, payload["id"]).status == WebhookStatus.RECEIVED
    assert count(app, AppSubscription, AppSubscription.stripe_subscription_id == "sub_new") == 0

    assert apply_due(app) == 1  # what a worker does
    row = webhook_row(app, payload["id"])
    assert row.status == WebhookStatus.PROCESSED and row.attempts == 1 and row.processed_at is not None
    assert count(app, AppSubscription, AppSubscription.stripe_subscription_id == "sub_new") == 1


def test_duplicates_and_events_of_the_other_mode_are_not_applied(app, client, acme):
    app.config["RQ_ASYNC"] = True
    payload = a_subscription_event()
    for _ in range(3):
        assert post(client, payload).status_code == 200
    other = a_subscription_event(livemode=True)
    assert post(client, other).status_code == 200
    assert webhook_row(app, other["id"]).status == WebhookStatus.IGNORED
    assert apply_due(app) == 1
    assert webhook_row(app, payload["id"]).attempts == 1


def test_when_redis_is_down_the_event_is_acknowledged_recorded_and_applied(app, client, acme):
    app.config["RQ_ASYNC"] = True
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there: no limiter, no counters
    payload = a_subscription_event()
    assert post(client, payload).status_code == 200
    assert webhook_row(app, payload["id"]).status == WebhookStatus.RECEIVED
    assert apply_due(app) == 1  # applying needs the database only
    assert webhook_row(app, payload["id"]).status == WebhookStatus.PROCESSED
    assert count(app, AppSubscription, AppSubscription.stripe_subscription_id == "sub_new") == 1


def test_other_methods_get_a_json_405_and_the_rule_still_builds_its_url(app, client):
    from flask import url_for

    response = client.get(URL)
    assert response.status_code == 405 and response.json["error"]["code"] == 405
    assert response.headers["Allow"] == "POST"
    with app.test_request_context():
        assert url_for("webhooks.stripe") == URL
    assert client.get("/login").status_code == 200  # every other request is Flask's


def test_when_the_database_cannot_record_the_event_nothing_is_acknowledged(app, client, caplog):
    from sqlalchemy import text

    from portal.extensions import db

    with app.app_context():
        db.session.execute(text("DROP TABLE processed_webhooks"))
        db.session.commit()
    payload = a_subscription_event()
    response = post(client, payload)
    assert response.status_code == 500 and response.json == {"error": {"code": 500, "message": "Internal error"}}
    assert any("unhandled error" in record.getMessage() for record in caplog.records)


def test_refusals_are_logged_with_their_reason_never_the_payload(app, client, caplog):
    raw = body(event("invoice.paid", {"id": "in_secretive", "customer_email": "owner@acme.test"}))
    client.post(URL, data=raw, headers={"Stripe-Signature": header_for("whsec_not_ours", raw)})
    messages = [record.getMessage() for record in caplog.records if record.name.startswith("portal.webhooks")]
    assert messages == ["webhook refused (bad_signature): no signature matches a configured secret"]
    assert "owner@acme.test" not in caplog.text and "whsec_" not in caplog.text

"""Many copies of one event arriving at the same moment: all acknowledged, recorded once, processed once.

The portal is served over HTTP by a threaded server, so each copy runs in its own
thread on its own database connection, and the unique event id (with the
IntegrityError of the losing INSERTs) is what keeps them apart, on SQLite and on
PostgreSQL.
"""
import threading

import pytest
import requests
from sqlalchemy import select, text

from billing.models import AppSubscription, AuditLog, ProcessedWebhook, WebhookStatus
from portal.extensions import db
from tests.helpers.data import count
from tests.helpers.webhooks import apply_due
from tests.webhooks.helpers import body, event, signed_headers, subscription
from tests.webhooks.serving import ThreadedServer

COPIES = 16


def _post_at_once(url: str, raw: bytes, copies: int) -> list[int]:
    barrier = threading.Barrier(copies)
    answers: list[int] = []
    lock = threading.Lock()

    def send():
        with requests.Session() as http:
            barrier.wait()
            status = http.post(url, data=raw, headers=signed_headers(raw), timeout=30).status_code
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=send) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def test_concurrent_copies_of_one_event_are_processed_once(backend, app, acme):
    app.config["RQ_ASYNC"] = True
    payload = event("customer.subscription.created", subscription(sub_id=f"sub_race_{backend}"))
    raw = body(payload)

    with ThreadedServer(app) as server:
        answers = _post_at_once(f"{server.url}/webhooks/kernel/stripe", raw, COPIES)

    assert answers == [200] * COPIES
    assert count(app, ProcessedWebhook) == 1
    assert apply_due(app) == 1  # applied once, whatever the number of copies
    with app.app_context():
        row = db.session.scalar(select(ProcessedWebhook))
        assert row.status == WebhookStatus.PROCESSED and row.attempts == 1
        assert db.session.scalar(select(AppSubscription.stripe_subscription_id)) == f"sub_race_{backend}"
        assert list(db.session.scalars(select(AuditLog.action).where(AuditLog.correlation_id == payload["id"]))) \
            == ["subscription.created"]


def test_concurrent_distinct_events_are_all_recorded(backend, app, acme):
    app.config["RQ_ASYNC"] = True
    payloads = [event("invoice.created", {"id": f"in_{i}", "object": "invoice", "customer": "cus_nobody"})
                for i in range(COPIES)]
    barrier = threading.Barrier(COPIES)
    answers = []

    with ThreadedServer(app) as server:
        def send(payload):
            raw = body(payload)
            barrier.wait()
            answers.append(requests.post(f"{server.url}/webhooks/kernel/stripe", data=raw,
                                         headers=signed_headers(raw), timeout=30).status_code)

        threads = [threading.Thread(target=send, args=(p,)) for p in payloads]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    assert sorted(answers) == [200] * COPIES
    assert count(app, ProcessedWebhook) == COPIES
    assert apply_due(app) == COPIES


@pytest.mark.postgres
def test_after_a_database_restart_the_next_delivery_is_still_recorded(app_config, request):
    """The inbox skips pre-ping on its hot path; a connection killed under it costs one retry, not the event."""
    request.getfixturevalue("postgres_backend")
    app = request.getfixturevalue("app")
    client = app.test_client()
    first = event("invoice.created", {"id": "in_before", "object": "invoice", "customer": "cus_nobody"})
    assert client.post("/webhooks/kernel/stripe", data=body(first), headers=signed_headers(body(first))).status_code \
        == 200
    with app.app_context():
        db.session.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        db.session.commit()
    second = event("invoice.created", {"id": "in_after", "object": "invoice", "customer": "cus_nobody"})
    assert client.post("/webhooks/kernel/stripe", data=body(second), headers=signed_headers(body(second))) \
        .status_code == 200
    assert count(app, ProcessedWebhook) == 2

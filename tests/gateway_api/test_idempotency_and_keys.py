"""Idempotency (replay, 409, racing twins, retention) and service keys (401, 403, another app's object: 404)."""
from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select

from billing import clock
from billing.audit import Origin
from billing.gateway_api import purge_idempotency_keys
from billing.models import App, GatewayIdempotencyKey, ServiceKey
from billing.service_keys import revoke_key
from jobs.gateway_api import purge_idempotency
from portal.extensions import db
from tests.helpers.gateway_api import Api, issue_key


def _intents_created(sandbox) -> int:
    return sandbox.stats()["by_endpoint"].get("POST /v1/payment_intents", 0)


def test_same_key_same_body_replays_without_calling_the_gateway(api, sandbox):
    token = api.token()
    body = {"gateway": "sandbox", "token_reference": token, "amount": "150.00", "currency": "BRL",
            "idempotency_key": "auth-guest-001"}
    sandbox.clear_stats()
    first = api.post("authorizations", body)
    assert first.status_code == 201
    assert _intents_created(sandbox) == 1
    sandbox.clear_stats()
    second = api.post("authorizations", body)
    assert (second.status_code, second.get_json()) == (first.status_code, first.get_json())
    assert _intents_created(sandbox) == 0


def test_same_key_other_body_is_a_409(api):
    token = api.token()
    body = {"gateway": "sandbox", "token_reference": token, "amount": "150.00", "currency": "BRL",
            "idempotency_key": "auth-guest-001"}
    assert api.post("authorizations", body).status_code == 201
    response = api.post("authorizations", {**body, "amount": "151.00"})
    assert response.status_code == 409
    assert response.get_json()["error"]["reason"] == "idempotency_key_reused"


def test_a_declined_answer_is_replayed_too(api, sandbox):
    from tests.helpers.gateway_api import INSUFFICIENT

    token = api.token(INSUFFICIENT)
    body = {"gateway": "sandbox", "token_reference": token, "amount": "15.00", "currency": "BRL",
            "idempotency_key": "auth-declined"}
    assert api.post("authorizations", body).status_code == 402
    sandbox.clear_stats()
    assert api.post("authorizations", body).status_code == 402
    assert _intents_created(sandbox) == 0


def test_two_identical_racing_requests_make_one_gateway_call(api, gw_app, sandbox):
    token = api.token()
    body = {"gateway": "sandbox", "token_reference": token, "amount": "42.00", "currency": "BRL",
            "idempotency_key": "auth-race"}
    sandbox.clear_stats()
    sandbox.fail(1, delay_seconds=1.0)  # the first call lingers, so the twin arrives while it runs
    answers = []
    barrier = threading.Barrier(2)

    def call():
        client = Api(gw_app.test_client(), api.key)
        barrier.wait()
        response = client.post("authorizations", body)
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [status for status, _ in answers] == [201, 201]
    assert answers[0][1] == answers[1][1]
    assert _intents_created(sandbox) == 1


def test_keys_are_kept_at_least_a_day(api, gw_app):
    api.authorize()
    with gw_app.app_context():
        assert purge_idempotency_keys(db.session, keep=timedelta(hours=1)) == 0  # never less than 24 h
        row = db.session.scalar(select(GatewayIdempotencyKey))
        row.created_at = clock.now() - timedelta(hours=47)
        db.session.commit()
        assert purge_idempotency_keys(db.session) == 0
        db.session.commit()
        row = db.session.scalar(select(GatewayIdempotencyKey))
        row.created_at = clock.now() - timedelta(hours=49)
        db.session.commit()
    assert purge_idempotency() == 1  # the daily job (jobs/schedules.py)


def test_no_valid_key_is_a_401(api, gw_app):
    body = {"gateway": "sandbox", "card": {"number": "4242424242424242", "exp_month": 1, "exp_year": 2030}}
    assert api.post("tokenize", body, key=None).status_code == 401
    assert api.post("tokenize", body, key="kgw_made_up").status_code == 401
    with gw_app.app_context():
        revoke_key(db.session, db.session.scalar(select(ServiceKey)), origin=Origin(actor="cli"))
        db.session.commit()
    response = api.post("tokenize", body)
    assert response.status_code == 401 and response.get_json()["error"]["code"] == 401


def test_a_key_only_calls_its_scopes(gw_app, tenant):
    narrow = Api(gw_app.test_client(), issue_key(gw_app, tenant, scopes=["tokenize"]))
    narrow.token()
    response = narrow.post("refunds", {"capture_id": "cap_x", "reason": "x", "idempotency_key": "r-1"})
    assert response.status_code == 403


def test_another_apps_objects_are_a_404(api, other_api, gw_app):
    auth = api.authorize().get_json()
    captured = api.captured(key="auth-0002")
    token = api.token()
    assert other_api.post("authorizations", {"gateway": "sandbox", "token_reference": token, "amount": "1.00",
                                             "currency": "BRL", "idempotency_key": "steal-1"}).status_code == 404
    assert other_api.post("captures", {"authorization_id": auth["authorization_id"],
                                       "idempotency_key": "steal-2"}).status_code == 404
    assert other_api.post("refunds", {"capture_id": captured["capture_id"], "reason": "mine now",
                                      "idempotency_key": "steal-3"}).status_code == 404
    refund = api.post("refunds", {"capture_id": captured["capture_id"], "reason": "customer asked",
                                  "idempotency_key": "r-own"}).get_json()
    assert other_api.get(f"refunds/{refund['refund_id']}").status_code == 404
    assert api.get(f"refunds/{refund['refund_id']}").status_code == 200


def test_each_key_has_its_own_idempotency_space(api, other_api):
    assert api.authorize(key="shared-key").status_code == 201
    assert other_api.authorize(key="shared-key").status_code == 201


def test_keys_are_stored_hashed(api, gw_app):
    with gw_app.app_context():
        row = db.session.scalar(select(ServiceKey))
        assert api.key not in (row.key_hash, row.prefix) and api.key.startswith(row.prefix)
        assert db.session.scalar(select(func.count(App.id))) >= 1

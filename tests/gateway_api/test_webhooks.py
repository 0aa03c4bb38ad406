"""POST /billing/webhooks/<gateway>: Stripe's signature for stripe, X-Gateway-Signature for a generic gateway."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from sqlalchemy import select

from billing.models import GatewayWebhookEvent, ProcessedWebhook
from billing.webhooks.signature import header_for
from portal.extensions import db
from tests.helpers.data import count

STRIPE_SECRET = "whsec_test_gateway_api"
ACQUIRER_SECRET = "acquirer-secret-1"


@pytest.fixture
def hook_app(app_config):
    app_config["STRIPE_KERNEL_WEBHOOK_SECRETS"] = [STRIPE_SECRET]
    app_config["GATEWAY_WEBHOOK_SECRETS"] = {"acquirer": ACQUIRER_SECRET}
    return app_config


@pytest.fixture
def hook_client(hook_app, app):
    return app.test_client()


def _stripe_event(event_id: str = "evt_gw_1") -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": "customer.created", "created": 1_785_600_000,
                       "livemode": False, "api_version": "2026-10-28.endive", "pending_webhooks": 1,
                       "request": {"id": None, "idempotency_key": None},
                       "data": {"object": {"id": "cus_x", "object": "customer"}}}).encode()


def test_stripe_events_go_through_the_kernel_receive_path(hook_client, app):
    raw = _stripe_event()
    response = hook_client.post("/billing/webhooks/stripe", data=raw,
                                headers={"Stripe-Signature": header_for(STRIPE_SECRET, raw)})
    assert response.status_code == 200 and response.get_json() == {"received": True}
    with app.app_context():
        assert db.session.scalar(select(ProcessedWebhook.event_id)) == "evt_gw_1"


@pytest.mark.parametrize("headers", [{}, {"Stripe-Signature": "t=1,v1=00"}])
def test_an_unsigned_or_badly_signed_stripe_event_writes_nothing(hook_client, app, headers):
    response = hook_client.post("/billing/webhooks/stripe", data=_stripe_event(), headers=headers)
    assert response.status_code == 400
    assert count(app, ProcessedWebhook) == 0


def _sign(body: bytes, secret: str = ACQUIRER_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_generic_gateway_event_is_kept_once(hook_client, app):
    raw = json.dumps({"id": "acq_evt_1", "type": "payment.settled", "amount": "150.00"}).encode()
    for _ in range(2):
        response = hook_client.post("/billing/webhooks/acquirer", data=raw,
                                    headers={"X-Gateway-Signature": _sign(raw), "Content-Type": "application/json"})
        assert response.status_code == 200
    with app.app_context():
        rows = db.session.scalars(select(GatewayWebhookEvent)).all()
        assert [(row.gateway, row.event_id, row.type) for row in rows] == [("acquirer", "acq_evt_1", "payment.settled")]


@pytest.mark.parametrize("signature", [None, "", "deadbeef", _sign(b"another body"), "SECRET"])
def test_a_generic_event_without_a_good_signature_is_a_400_and_writes_nothing(hook_client, app, signature):
    raw = json.dumps({"id": "acq_evt_2"}).encode()
    headers = {} if signature is None else {"X-Gateway-Signature": _sign(raw, "not-the-secret")
                                            if signature == "SECRET" else signature}
    response = hook_client.post("/billing/webhooks/acquirer", data=raw, headers=headers)
    assert response.status_code == 400
    assert count(app, GatewayWebhookEvent) == 0


def test_a_signed_body_that_is_not_an_event_is_a_400(hook_client, app):
    raw = b"[1, 2]"
    assert hook_client.post("/billing/webhooks/acquirer", data=raw,
                            headers={"X-Gateway-Signature": _sign(raw)}).status_code == 400
    assert count(app, GatewayWebhookEvent) == 0


def test_an_unknown_gateway_is_a_404(hook_client, app):
    raw = json.dumps({"id": "x"}).encode()
    response = hook_client.post("/billing/webhooks/paypal", data=raw, headers={"X-Gateway-Signature": _sign(raw)})
    assert response.status_code == 404
    assert count(app, GatewayWebhookEvent) == 0


def test_the_kernel_stripe_endpoint_stays(hook_client):
    assert hook_client.post("/webhooks/kernel/stripe", data=_stripe_event("evt_gw_2")).status_code == 400

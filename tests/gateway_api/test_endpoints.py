"""The gateway API's endpoints against the sandbox: shapes, money at the edge, errors per status."""
from __future__ import annotations

import logging

from sqlalchemy import select

from billing.models import GatewayAuthorization, GatewayToken
from portal.extensions import db
from tests.helpers.gateway_api import DECLINED, INSUFFICIENT, VISA, unreachable_gateway


def test_tokenize_returns_a_masked_token_and_keeps_no_card_data(api, gw_app):
    response = api.post("tokenize", {"gateway": "sandbox", "card": VISA})
    assert response.status_code == 201
    body = response.get_json()
    assert body["brand"] == "visa" and body["last4"] == "4242"
    assert (body["exp_month"], body["exp_year"]) == (12, 2034)
    assert body["token_reference"].startswith("pm_")
    with gw_app.app_context():
        row = db.session.scalar(select(GatewayToken))
        stored = " ".join(str(getattr(row, column.key)) for column in GatewayToken.__table__.columns)
    assert "4242424242424242" not in stored and "123" not in stored.split()


def test_tokenize_is_refused_outside_the_sandbox_unless_allowed(api, gw_app, monkeypatch):
    from portal.payments import gateway

    with gw_app.app_context():
        monkeypatch.setattr(gateway(), "sandbox", False)
    response = api.post("tokenize", {"gateway": "stripe", "card": VISA})
    assert response.status_code == 403
    assert response.get_json()["error"]["reason"] == "raw_card_api_disabled"
    gw_app.config["BILLING_ALLOW_RAW_CARD_API"] = True
    assert api.post("tokenize", {"gateway": "stripe", "card": VISA}).status_code == 201


def test_authorize_holds_then_capture_takes_part(api, gw_app):
    response = api.authorize("150.00")
    assert response.status_code == 201
    auth = response.get_json()
    assert auth["status"] == "approved" and auth["capture_pending"] is True and auth["capture_id"] is None
    assert (auth["amount"], auth["currency"]) == ("150.00", "BRL")
    assert auth["gateway_reference"].startswith("pi_") and auth["created_at"] and auth["metadata"] == {}
    with gw_app.app_context():
        assert db.session.scalar(select(GatewayAuthorization.amount)) == 15000  # minor units inside

    captured = api.post("captures", {"authorization_id": auth["authorization_id"], "amount": "100.50",
                                     "currency": "BRL", "idempotency_key": "cap-1"})
    assert captured.status_code == 201, captured.get_json()
    assert captured.get_json()["amount"] == "100.50"
    again = api.post("captures", {"authorization_id": auth["authorization_id"], "idempotency_key": "cap-2"})
    assert again.status_code == 400
    assert "authorization_id" in again.get_json()["error"]["fields"]


def test_capture_true_charges_at_once(api):
    auth = api.captured("99.90")
    assert auth["status"] == "captured" and auth["capture_pending"] is False and auth["capture_id"]


def test_zero_decimal_currency_uses_its_exponent(api, gw_app):
    response = api.authorize("5000", currency="JPY")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["amount"] == "5000"
    bad = api.authorize("50.5", currency="JPY", key="auth-jpy-2")
    assert bad.status_code == 400
    assert "amount" in bad.get_json()["error"]["fields"]


def test_bad_input_gets_a_message_per_field_and_changes_nothing(api, gw_app):
    response = api.post("authorizations", {"gateway": "sandbox", "amount": 150.0, "currency": "XXX",
                                           "capture": "yes"})
    assert response.status_code == 400
    fields = response.get_json()["error"]["fields"]
    assert set(fields) == {"token_reference", "currency", "capture", "idempotency_key", "amount"}
    assert api.post("authorizations", ["not", "an", "object"]).status_code == 400
    assert api.post("tokenize", {"gateway": "sandbox", "card": {"number": "12", "exp_month": 13}}).status_code == 400
    with gw_app.app_context():
        assert db.session.scalar(select(GatewayAuthorization)) is None


def test_declined_card_is_a_402_with_its_code(api):
    response = api.authorize(card=INSUFFICIENT)
    assert response.status_code == 402
    assert response.get_json()["error"]["decline_code"] == "insufficient_funds"
    declined = api.authorize(card=DECLINED, key="auth-0002")
    assert declined.status_code == 402
    assert declined.get_json()["error"]["decline_code"] in ("generic_decline", "card_declined")


def test_provider_failure_is_a_502_with_our_reference_in_the_log(api, gw_app, caplog):
    token = api.token()
    with caplog.at_level(logging.ERROR, logger="portal.gateway_api.routes"), unreachable_gateway(gw_app):
        response = api.post("authorizations", {"gateway": "sandbox", "token_reference": token, "amount": "10.00",
                                               "currency": "BRL", "idempotency_key": "auth-502"})
    assert response.status_code == 502
    reference = response.get_json()["error"]["reference"]
    lines = [record.getMessage() for record in caplog.records if reference in record.getMessage()]
    assert lines and "GatewayUnavailable" in lines[0]
    # Nothing was known done, so the same key may try again, and now succeeds.
    retry = api.post("authorizations", {"gateway": "sandbox", "token_reference": token, "amount": "10.00",
                                        "currency": "BRL", "idempotency_key": "auth-502"})
    assert retry.status_code == 201


def test_unknown_gateway_is_a_404(api):
    response = api.post("tokenize", {"gateway": "paypal", "card": VISA})
    assert response.status_code == 404
    assert api.post("authorizations", {"gateway": "adyen", "token_reference": "pm_x", "amount": "1.00",
                                       "currency": "BRL", "idempotency_key": "k-1"}).status_code == 404

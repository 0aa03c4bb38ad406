"""The Billing Gateway API charges too: while billing is paused it authorizes and captures nothing."""
from __future__ import annotations

from sqlalchemy import func, select

from billing.models import GatewayAuthorization, GatewayCapture
from portal.extensions import db
from tests.helpers.control import pause, resume


def test_authorizations_and_captures_wait_for_the_resume(api, gw_app):  # noqa: F811
    held = api.authorize("150.00")
    assert held.status_code == 201
    authorization = held.get_json()["authorization_id"]
    pause(gw_app)
    refused = api.authorize("20.00", key="auth-paused")
    assert refused.status_code == 409 and refused.get_json()["error"]["reason"] == "billing_paused"
    capture = api.post("captures", {"authorization_id": authorization, "idempotency_key": "cap-paused"})
    assert capture.status_code == 409
    with gw_app.app_context():
        assert db.session.scalar(select(func.count(GatewayAuthorization.id))) == 1
        assert db.session.scalar(select(func.count(GatewayCapture.id))) == 0
    resume(gw_app)
    assert api.post("captures", {"authorization_id": authorization, "idempotency_key": "cap-after"}).status_code == 201

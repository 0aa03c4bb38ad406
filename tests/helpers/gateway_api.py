"""The Billing Gateway API from a test: service keys, a client that speaks JSON with one, and cards as JSON."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Optional

from billing.audit import Origin
from billing.gateway import StripeGateway
from billing.models import App
from billing.service_keys import SCOPES, create_key
from portal.extensions import db
from portal.payments import EXTENSION

VISA = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
DECLINED = {"number": "4000000000000002", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
INSUFFICIENT = {"number": "4000000000009995", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


def issue_key(app, tenant: App, scopes=SCOPES, name: str = "support tool") -> str:
    with app.app_context():
        issued = create_key(db.session, db.session.get(App, tenant.id), name=name, scopes=scopes, origin=Origin(actor="cli"))
        db.session.commit()
        return issued.secret


@dataclass
class Api:
    """A test client calling /billing/ with one service key."""

    client: Any
    key: Optional[str]

    def post(self, path: str, body: Any, key: Optional[str] = "default"):
        key = self.key if key == "default" else key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.client.post(f"/billing/{path}", json=body, headers=headers)

    def get(self, path: str):
        return self.client.get(f"/billing/{path}", headers={"Authorization": f"Bearer {self.key}"})

    def token(self, card=None, gateway: str = "sandbox") -> str:
        response = self.post("tokenize", {"gateway": gateway, "card": dict(card or VISA)})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["token_reference"]

    def authorize(self, amount: str = "150.00", capture: bool = False, key: str = "auth-0001", card=None,
                  currency: str = "BRL"):
        return self.post("authorizations", {"gateway": "sandbox", "token_reference": self.token(card),
                                            "amount": amount, "currency": currency, "capture": capture,
                                            "idempotency_key": key})

    def captured(self, amount: str = "150.00", key: str = "auth-0001") -> dict:
        response = self.authorize(amount, capture=True, key=key)
        assert response.status_code == 201, response.get_json()
        return response.get_json()


@contextmanager
def unreachable_gateway(app):
    """Stripe cannot be reached (connection refused) until the block ends: a provider failure at the network edge.

    Not the sandbox's injected faults: the portal also reads the sandbox's clock, which would eat some of them.
    """
    reachable = app.extensions[EXTENSION]
    app.extensions[EXTENSION] = StripeGateway.for_sandbox("http://127.0.0.1:9", max_network_retries=0)
    try:
        yield
    finally:
        app.extensions[EXTENSION] = reachable

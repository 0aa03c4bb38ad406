"""No PAN or CVV in any log line, after card data went through every endpoint (SDK debug logs and tracebacks too)."""
from __future__ import annotations

import io
import json
import logging
import re

import pytest

from billing import redaction
from portal.payments import gateway
from tests.helpers.gateway_api import unreachable_gateway

PAN = "4242424242424242"
SPACED_PAN = "4242 4242 4242 4242"
CVC = "739"
CARD = {"number": SPACED_PAN, "exp_month": 12, "exp_year": 2034, "cvc": CVC}
LEAKS = [PAN, SPACED_PAN, "4242-4242-4242-4242", re.compile(rf"(?i)cv[cv]\W{{0,8}}{CVC}")]


@pytest.fixture
def captured_logs():
    """Every record at DEBUG, the stripe SDK's request bodies included, through a handler as production has."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root, sdk = logging.getLogger(), logging.getLogger("stripe")
    levels = root.level, sdk.level
    root.addHandler(handler)
    redaction.install()  # what create_app does for the handlers it finds
    root.setLevel(logging.DEBUG)
    sdk.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(levels[0])
    sdk.setLevel(levels[1])


def _assert_clean(text: str) -> None:
    for leak in LEAKS:
        found = leak.search(text) if isinstance(leak, re.Pattern) else leak in text
        assert not found, f"{leak} leaked into the logs"


def test_card_data_sent_everywhere_never_reaches_a_log_line(api, gw_app, sandbox, captured_logs):
    token = api.post("tokenize", {"gateway": "sandbox", "card": CARD}).get_json()["token_reference"]
    api.post("tokenize", {"gateway": "sandbox", "card": {**CARD, "number": "4242424242424241"}})  # bad Luhn
    api.post("tokenize", {"gateway": "sandbox", "card": {**CARD, "exp_month": 13}})
    with unreachable_gateway(gw_app):
        api.post("tokenize", {"gateway": "sandbox", "card": CARD})  # provider failure: logged with its reference
    auth = api.post("authorizations", {"gateway": "sandbox", "token_reference": token, "amount": "10.00",
                                       "currency": "BRL", "capture": True, "idempotency_key": "mask-1",
                                       "metadata": {"note": f"card {SPACED_PAN} cvc {CVC}"}, "card": CARD})
    api.post("captures", {"authorization_id": "auth_nope", "idempotency_key": "mask-2", "card": CARD})
    refund = api.post("refunds", {"capture_id": auth.get_json()["capture_id"], "reason": f"cvv: {CVC} {PAN}",
                                  "idempotency_key": "mask-3", "card": CARD})
    api.get(f"refunds/{refund.get_json()['refund_id']}")
    raw = json.dumps({"id": "evt_mask", "card": CARD}).encode()
    client = gw_app.test_client()
    client.post("/billing/webhooks/stripe", data=raw, headers={"Stripe-Signature": "t=1,v1=00"})
    client.post("/billing/webhooks/acquirer", data=raw)
    client.post("/webhooks/kernel/stripe", data=raw)
    client.get(f"/billing/reconciliation?date={PAN}&cvc={CVC}")
    client.get("/billing/openapi.json", query_string={"card": SPACED_PAN})
    text = captured_logs.getvalue()
    assert "Post details" in text and "[card number redacted]" in text  # the SDK did log the card, redacted
    assert "gateway provider failure reference=" in text
    _assert_clean(text)


def test_a_traceback_carrying_card_data_is_masked(api, gw_app, captured_logs, monkeypatch):
    def explode(**card):
        raise RuntimeError(f"unexpected: {card}")

    gw_app.config["PROPAGATE_EXCEPTIONS"] = False  # answered 500 and logged, as in production
    with gw_app.app_context():
        monkeypatch.setattr(gateway(), "tokenize_card", explode)
    response = api.post("tokenize", {"gateway": "sandbox", "card": CARD})
    assert response.status_code == 500
    text = captured_logs.getvalue()
    assert "RuntimeError: unexpected" in text
    _assert_clean(text)

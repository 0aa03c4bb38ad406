"""Paying the open invoice during dunning when Stripe's answer is lost: "being confirmed", then settled by the
same idempotency key. The cut is real: a proxy forwards the pay request, the sandbox charges, the answer is dropped."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from billing.gateway import pay_invoice_key
from billing.models import AuditLog, ChargeAttempt, ChargeStatus
from portal.payments import gateway
from tests.helpers.clients import pay_hosted_checkout
from tests.helpers.data import short_session
from tests.flows.test_charge_outcome_unknown import CONFIRMING, NOTHING_CHARGED, proxied  # noqa: F401 (fixture)


@pytest.fixture
def cut_pay(proxied):  # noqa: F811 (the fixture imported above)
    proxied.cut = ("POST", re.compile(r"^/v1/invoices/in_[^/]+/pay"))
    return proxied


def test_a_lost_answer_to_paying_during_dunning_is_confirmed_then_settled(billing_app, dunning, owner, owner_client,
                                                                          cut_pay):
    started = owner_client.post(f"/apps/{dunning.app_id}/pay", data={"attempt": "attempt-token-1"})
    assert started.status_code == 303
    back = urlsplit(pay_hosted_checkout(started.headers["Location"]).headers["Location"])
    complete = f"{back.path}?{back.query}"

    page = owner_client.get(complete, follow_redirects=True).get_data(as_text=True)
    assert CONFIRMING in page and NOTHING_CHARGED not in page
    with short_session(billing_app) as session:
        (attempt,) = session.scalars(select(ChargeAttempt)).all()
        session_id = dict(p.split("=", 1) for p in back.query.split("&"))["session_id"]
        assert attempt.idempotency_key == pay_invoice_key(dunning.invoice_id, f"owner:{session_id}")
        assert attempt.status == ChargeStatus.UNKNOWN and attempt.requested_by_id == owner.id
    with billing_app.app_context():
        assert gateway().retrieve_invoice(dunning.invoice_id).status == "paid"  # Stripe did charge

    cut_pay.cut = None  # back online: the same page again replays the same key
    done = owner_client.get(complete, follow_redirects=True).get_data(as_text=True)
    assert "Payment received, thank you." in done
    with short_session(billing_app) as session:
        (attempt,) = session.scalars(select(ChargeAttempt)).all()
        assert attempt.status == ChargeStatus.SUCCEEDED and attempt.amount == 9900
        assert session.scalar(select(AuditLog.actor_user_id).where(AuditLog.action == "charge.succeeded")) == owner.id
    with billing_app.app_context():
        payments = gateway().list_invoice_payment_intents(dunning.invoice_id)
        assert len([pi for pi in payments if gateway().retrieve_payment_intent(pi).status == "succeeded"]) == 1

"""Paying the open invoice during dunning, when it cannot be paid: the card saved is declined when charged, or
Stripe is away. Either way nothing is charged, the owner is told so on the pay page, and the invoice stays open."""
from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select

from billing.models import ChargeAttempt, ChargeStatus, KernelCheckoutSession
from tests.helpers.clients import pay_hosted_checkout
from tests.helpers.data import count, invoice_row, short_session
from tests.helpers.gateway_api import unreachable_gateway

ATTACHES_BUT_FAILS = "4000 0000 0000 0341"


def test_a_card_declined_when_charged_charges_nothing_and_sends_the_owner_back_to_pay(billing_app, dunning,
                                                                                      owner_client):
    started = owner_client.post(f"/apps/{dunning.app_id}/pay", data={"attempt": "attempt-token-1"})
    back = urlsplit(pay_hosted_checkout(started.headers["Location"], card_number=ATTACHES_BUT_FAILS)
                    .headers["Location"])

    answer = owner_client.get(f"{back.path}?{back.query}")
    assert answer.status_code == 302 and answer.headers["Location"] == f"/apps/{dunning.app_id}/pay"
    page = owner_client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Your card was declined, so nothing was charged. Please try another card." in page
    with short_session(billing_app) as session:
        (attempt,) = session.scalars(select(ChargeAttempt)).all()
        assert attempt.status == ChargeStatus.FAILED
    assert invoice_row(billing_app, dunning.invoice_id).status == "open"


def test_stripe_away_when_opening_the_card_checkout_records_nothing(billing_app, dunning, owner_client):
    with unreachable_gateway(billing_app):
        answer = owner_client.post(f"/apps/{dunning.app_id}/pay", data={"attempt": "attempt-token-1"})
    assert answer.status_code == 302 and answer.headers["Location"] == f"/apps/{dunning.app_id}/pay"
    page = owner_client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Payments are temporarily unavailable, nothing was charged" in page
    assert count(billing_app, KernelCheckoutSession) == 0

"""Each charge attempt is recorded once, by its charge, however many events report it and in any order."""
from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from billing.audit import Origin
from billing.gateway.types import PaymentIntent
from billing.models import PaymentOutcome
from billing.webhooks.correlation import correlated
from billing.webhooks.payments import upsert_payment
from portal.extensions import db
from tests.ops import planting

ORIGIN = Origin(actor="webhook", correlation_id="evt_test")
FAILED = PaymentIntent(id="pi_1", status="requires_payment_method", amount=9900, amount_capturable=0,
                       amount_received=0, currency="BRL", customer="cus_1", payment_method="pm_1",
                       capture_method="automatic", latest_charge="ch_failed", last_error_code="card_declined",
                       metadata={})
SUCCEEDED = replace(FAILED, status="succeeded", amount_received=9900, latest_charge="ch_paid", last_error_code=None)


def test_a_failed_then_retried_payment_is_two_attempts_recorded_once_each(app):
    with app.app_context(), correlated("evt_test"):  # as in a webhook job: the log line carries the event id
        payer = planting.any_app(db.session)
        upsert_payment(db.session, payer, SUCCEEDED, observed_at=1_800_000_100, origin=ORIGIN)
        upsert_payment(db.session, payer, FAILED, observed_at=1_800_000_000, origin=ORIGIN)  # arrived late
        upsert_payment(db.session, payer, SUCCEEDED, observed_at=1_800_000_100, origin=ORIGIN)  # redelivered
        upsert_payment(db.session, payer, replace(FAILED, status="processing", latest_charge=None,
                                                  last_error_code=None), observed_at=1_800_000_050, origin=ORIGIN)
        db.session.commit()
        rows = db.session.execute(select(PaymentOutcome.reference, PaymentOutcome.outcome, PaymentOutcome.reason)
                                  .order_by(PaymentOutcome.occurred_at)).all()
        assert rows == [("ch_failed", "failed", "card_declined"), ("ch_paid", "succeeded", None)]

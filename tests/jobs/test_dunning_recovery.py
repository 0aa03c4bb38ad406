"""Dunning after something went wrong mid-way: a crash between claim and result, a payment racing a retry."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from billing import clock
from billing.dunning import STUCK_CLAIM_AFTER, DunningContext, _charge
from billing.models import AttemptStatus, KernelInvoice, KernelPaymentAttempt
from billing.audit import Origin
from jobs.dunning import run_now
from portal.extensions import db
from portal.payments import gateway
from tests.helpers.dunning import advance_to, day


def _slot(number: int) -> KernelPaymentAttempt:
    return db.session.scalar(select(KernelPaymentAttempt).where(KernelPaymentAttempt.attempt_number == number))


def _announce_first_retry(application, dunning) -> None:
    advance_to(application, day(dunning, 2))  # the notice, the day before retry #1
    run_now()
    with application.app_context():
        assert _slot(1).status == AttemptStatus.SCHEDULED


def test_a_retry_claimed_by_a_crashed_run_is_charged_once_later(billing_app, dunning):
    _announce_first_retry(billing_app, dunning)
    advance_to(billing_app, day(dunning, 3))
    with billing_app.app_context():
        # The crashed run: it claimed slot 1 and reached Stripe, then died before recording the result.
        _slot(1).attempted_at = clock.now()
        db.session.commit()
        try:
            gateway().pay_invoice(dunning.invoice_id, attempt="dunning-1")
        except Exception:  # the card fails; the crashed run never saw the answer
            pass
        attempts_in_stripe = gateway().retrieve_invoice(dunning.invoice_id).attempt_count

    run_now()  # same day, within the claim's grace: another process might still be charging
    with billing_app.app_context():
        assert _slot(1).status == AttemptStatus.SCHEDULED

    advance_to(billing_app, day(dunning, 3) + STUCK_CLAIM_AFTER + timedelta(minutes=1))
    run_now()
    with billing_app.app_context():
        slot = _slot(1)
        assert slot.status == AttemptStatus.FAILED and slot.failure_code
        # The re-drive used the same idempotency key: Stripe replayed the first answer, no second charge.
        assert gateway().retrieve_invoice(dunning.invoice_id).attempt_count == attempts_in_stripe


def test_an_invoice_paid_just_before_the_retry_charges_ends_dunning(billing_app, dunning):
    _announce_first_retry(billing_app, dunning)
    advance_to(billing_app, day(dunning, 3))
    with billing_app.app_context():
        good = gateway().attach_payment_method(dunning.customer_id, "pm_card_visa")
        # The owner pays in Stripe after the job read the invoice and claimed the slot (the race _charge handles).
        gateway().pay_invoice(dunning.invoice_id, attempt="owner", payment_method_id=good.payment_method_id)
        invoice = db.session.scalar(select(KernelInvoice).where(KernelInvoice.stripe_invoice_id == dunning.invoice_id))
        slot = _slot(1)
        slot.attempted_at = clock.now()
        ctx = DunningContext(gateway=gateway(), now=clock.now(), origin=Origin(actor="job:dunning"))
        _charge(db.session, invoice, slot, ctx)
        db.session.commit()
        assert _slot(1).status == AttemptStatus.CANCELED
        invoice = db.session.scalar(select(KernelInvoice).where(KernelInvoice.stripe_invoice_id == dunning.invoice_id))
        assert invoice.status == "paid" and invoice.dunning_outcome == "paid"

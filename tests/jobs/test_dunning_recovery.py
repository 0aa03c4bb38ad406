"""Dunning after something went wrong mid-way: a crash between claim and result, a payment racing a retry."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from billing import clock
from billing.dunning import STUCK_CLAIM_AFTER, DunningContext, advance_dunning
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


class _OwnerPaysFirst:
    """Stripe as the dunning job reaches it, except that the owner pays the invoice there just before the job's
    retry charge arrives: after the job read the invoice (open) and claimed the slot."""

    def __init__(self, stripe, customer_id: str):
        self._stripe, self._customer_id = stripe, customer_id

    def __getattr__(self, name: str):
        return getattr(self._stripe, name)

    def pay_invoice(self, invoice_id: str, *, attempt: str, payment_method_id=None):
        if attempt.startswith("dunning-"):
            good = self._stripe.attach_payment_method(self._customer_id, "pm_card_visa")
            self._stripe.pay_invoice(invoice_id, attempt="owner", payment_method_id=good.payment_method_id)
        return self._stripe.pay_invoice(invoice_id, attempt=attempt, payment_method_id=payment_method_id)


def test_an_invoice_paid_just_before_the_retry_charges_ends_dunning(billing_app, dunning):
    _announce_first_retry(billing_app, dunning)
    advance_to(billing_app, day(dunning, 3))
    with billing_app.app_context():
        invoice = db.session.scalar(select(KernelInvoice).where(KernelInvoice.stripe_invoice_id == dunning.invoice_id))
        racing = _OwnerPaysFirst(gateway(), dunning.customer_id)
        ctx = DunningContext(gateway=racing, now=clock.now(), origin=Origin(actor="job:dunning"))
        advance_dunning(db.session, invoice, ctx)
        db.session.commit()
        assert _slot(1).status == AttemptStatus.CANCELED
        invoice = db.session.scalar(select(KernelInvoice).where(KernelInvoice.stripe_invoice_id == dunning.invoice_id))
        assert invoice.status == "paid" and invoice.dunning_outcome == "paid"

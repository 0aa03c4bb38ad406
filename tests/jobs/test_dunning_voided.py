"""An invoice voided in Stripe during dunning: nothing is left to collect, so dunning ends without a retry."""
from __future__ import annotations

from sqlalchemy import select

from billing.models import Alert, App, AppStatus, AttemptStatus, KernelInvoice, KernelPaymentAttempt
from jobs.dunning import run_now
from portal.extensions import db
from portal.payments import gateway
from tests.helpers.dunning import advance_to, day
from tests.helpers.sandbox import make_client


def test_a_voided_invoice_ends_dunning_with_no_retry(billing_app, dunning, sandbox):
    advance_to(billing_app, day(dunning, 2))  # retry #1 is announced for tomorrow
    run_now()
    with billing_app.app_context():
        attempts_before = gateway().retrieve_invoice(dunning.invoice_id).attempt_count

    make_client(sandbox.url).v1.invoices.void_invoice(dunning.invoice_id)  # e.g. a superadmin forgave it
    advance_to(billing_app, day(dunning, 3))  # the day retry #1 would charge
    run_now()

    with billing_app.app_context():
        invoice = db.session.scalar(select(KernelInvoice).where(KernelInvoice.stripe_invoice_id == dunning.invoice_id))
        assert (invoice.status, invoice.dunning_outcome) == ("void", "void") and invoice.dunning_closed_at
        slots = {row.attempt_number: row.status for row in db.session.scalars(
            select(KernelPaymentAttempt).where(KernelPaymentAttempt.invoice_id == invoice.id))}
        assert slots == {0: AttemptStatus.FAILED, 1: AttemptStatus.CANCELED}
        assert gateway().retrieve_invoice(dunning.invoice_id).attempt_count == attempts_before  # never charged
        assert all(alert.resolved_at is not None for alert in db.session.scalars(
            select(Alert).where(Alert.kind == "payment_failed")))
        assert db.session.get(App, dunning.app_id).status == AppStatus.ACTIVE

    advance_to(billing_app, day(dunning, 8))  # past the last retry day: still nothing happens
    run_now()
    with billing_app.app_context():
        assert db.session.scalar(select(KernelPaymentAttempt).where(KernelPaymentAttempt.attempt_number > 1)) is None
        assert db.session.get(App, dunning.app_id).status == AppStatus.ACTIVE

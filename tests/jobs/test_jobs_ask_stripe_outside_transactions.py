"""Issue #10 item 5 for the jobs and the superadmin: no database transaction stays open while Stripe is called.

The owner's actions were first (tests/flows/test_no_transaction_across_stripe.py). The dunning job charged a
retry, cancelled the subscription after the last one and re-read invoices inside its transaction, and the
superadmin's heal asked Stripe with the divergence's row read: on SQLite the give-up held the one write lock
across Stripe's cancel. Now each dunning step and each heal sees Stripe through ``read_first``
(billing/webhooks/prefetch.py): the work stops at a question, its transaction is rolled back, Stripe is asked
with nothing open, and the work runs again with the answer. The portal's gateway hook raises in tests when a job
or a request calls Stripe with its transaction open (portal/payments.py), so every job test checks it too; the
tests here prove the hook covers jobs and record every call a whole dunning cycle and a heal make.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from billing.errors import NotFound
from billing.gateway import StripeGateway
from billing.models import (
    AppSubscription,
    AttemptStatus,
    KernelInvoice,
    KernelPaymentAttempt,
    ReconciliationDivergence,
)
from billing.passes import reconciliation_pass
from billing.states import SubscriptionStatus
from jobs.dunning import run_now
from portal.extensions import db
from portal.payments import TransactionOpenAcrossStripe, checked_job, checked_scope, gateway
from tests.helpers.dunning import advance_to, day, subscribe_directly


def test_the_gateway_refuses_a_call_from_a_job_with_a_transaction_open(billing_app):
    with billing_app.app_context(), checked_job("a job"):
        db.session.execute(text("SELECT 1"))
        with pytest.raises(TransactionOpenAcrossStripe, match="a job called Stripe"):
            gateway().retrieve_invoice("in_anything")
        db.session.commit()
        with pytest.raises(NotFound):  # the call goes out once the transaction has ended
            gateway().retrieve_invoice("in_anything")
    with billing_app.app_context():  # not a job: a test's own session is the test's business
        db.session.execute(text("SELECT 1"))
        with pytest.raises(NotFound):
            gateway().retrieve_invoice("in_anything")
        db.session.rollback()


@pytest.fixture
def stripe_calls(monkeypatch):
    """Every request to Stripe made by a job or a request: (method, whether its session had a transaction open)."""
    seen: list[tuple[str, bool]] = []
    real = StripeGateway._call

    def spy(self, method, *args, **options):
        if checked_scope() is not None:
            seen.append((getattr(method, "__qualname__", str(method)), db.session().in_transaction()))
        return real(self, method, *args, **options)

    monkeypatch.setattr(StripeGateway, "_call", spy)
    return seen


def test_a_whole_dunning_cycle_asks_stripe_with_no_transaction_open(billing_app, dunning, stripe_calls):
    """Notices, three declined retries, the cancel and the pause: each call with nothing open, each retry once."""
    for number in range(1, 8):
        advance_to(billing_app, day(dunning, number))
        result = run_now()
        assert result and result["failed"] == 0, result
    with billing_app.app_context():
        attempts = db.session.scalars(select(KernelPaymentAttempt).order_by(KernelPaymentAttempt.attempt_number))
        assert [row.status for row in attempts] == [AttemptStatus.FAILED] * 4
        row = db.session.scalar(select(AppSubscription).where(
            AppSubscription.stripe_subscription_id == dunning.subscription_id))
        assert row.status == SubscriptionStatus.CANCELED
        assert gateway().retrieve_invoice(dunning.invoice_id).attempt_count == 4  # charged once per retry
    asked = [name for name, _ in stripe_calls]
    assert asked.count("InvoiceService.pay") == 3 and asked.count("SubscriptionService.cancel") == 1, asked
    assert [name for name, open_ in stripe_calls if open_] == []


def test_a_heal_asks_stripe_with_no_transaction_open(billing_app, tenant, superadmin_client, stripe_calls):
    _customer, subscription_id = subscribe_directly(billing_app, tenant.id)
    with billing_app.app_context():  # our rows fall behind Stripe's: a status and an invoice's payment
        db.session.scalar(select(AppSubscription).where(AppSubscription.app_id == tenant.id)).status = \
            SubscriptionStatus.PAST_DUE
        invoice = db.session.scalar(select(KernelInvoice).where(KernelInvoice.app_id == tenant.id))
        invoice.status, invoice.amount_paid, invoice.amount_remaining = "open", 0, invoice.amount_due
        invoice_id = invoice.stripe_invoice_id
        db.session.commit()
        _job, run = reconciliation_pass(db.session, gateway(), trigger="test")
        divergences = {row.stripe_id: row.id for row in db.session.scalars(select(ReconciliationDivergence).where(
            ReconciliationDivergence.run_id == run.id, ReconciliationDivergence.healable))}
    assert set(divergences) == {subscription_id, invoice_id}
    stripe_calls.clear()
    for divergence_id in divergences.values():
        assert superadmin_client.post(f"/admin/reconciliation/divergences/{divergence_id}/heal").status_code == 302
    with billing_app.app_context():
        assert all(db.session.get(ReconciliationDivergence, divergence_id).healed_at is not None
                   for divergence_id in divergences.values())
        assert db.session.scalar(select(KernelInvoice.status).where(KernelInvoice.stripe_invoice_id == invoice_id)) \
            == "paid"
    assert len(stripe_calls) >= 2 and [name for name, open_ in stripe_calls if open_] == []

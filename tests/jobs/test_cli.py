"""``flask reconcile``, ``flask dunning run`` and ``flask notices send``."""
from __future__ import annotations

from sqlalchemy import select

from billing.models import KernelInvoice
from portal.extensions import db
from tests.helpers.dunning import advance_to, day, subscribe_directly


def test_reconcile_reports_counts_and_lists_divergences(billing_app, tenant):
    subscribe_directly(billing_app, tenant.id)
    runner = billing_app.test_cli_runner()
    clean = runner.invoke(args=["reconcile"])
    assert clean.exit_code == 0, clean.output
    assert "Reconciling" in clean.output
    assert "1 subscriptions and 1 invoices checked with 2 Stripe API calls: 0 divergences." in clean.output

    with billing_app.app_context():
        invoice = db.session.scalar(select(KernelInvoice))
        invoice.amount_due = 100
        stripe_id = invoice.stripe_invoice_id
        db.session.commit()
    found = runner.invoke(args=["reconcile"])
    assert found.exit_code == 0, found.output
    assert ": 1 divergences." in found.output
    assert f"amount          invoice      {stripe_id}: ours {{'amount_due': 100, 'currency': 'BRL'}}" in found.output


def test_dunning_run_moves_open_dunnings(billing_app, dunning):
    runner = billing_app.test_cli_runner()
    advance_to(billing_app, day(dunning, 2))
    result = runner.invoke(args=["dunning", "run"])
    assert result.exit_code == 0, result.output
    assert ": 1 processed, 0 failed (notified: 1)." in result.output
    advance_to(billing_app, day(dunning, 3))
    assert "(retry_failed: 1)" in runner.invoke(args=["dunning", "run"]).output
    assert "(waiting: 1)" in runner.invoke(args=["dunning", "run"]).output


def test_notices_send_needs_smtp(app):
    result = app.test_cli_runner().invoke(args=["notices", "send"])
    assert result.exit_code == 1 and "SMTP_URL is not set" in result.output

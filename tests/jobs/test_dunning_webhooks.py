"""End to end: day 0 arrives as Stripe's ``invoice.payment_failed`` webhook, the dunning job does the rest.

The sandbox delivers signed events to the running portal and an RQ worker process
handles them (``webhook_pipeline``); the dunning job runs on the days the test
clock reaches, and its retries' own events flow back through the same pipeline.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from billing.models import App, AppStatus, KernelPaymentAttempt, ProcessedWebhook, WebhookStatus
from jobs.dunning import run_now
from portal.extensions import db
from portal.payments import gateway
from tests.helpers.dunning import advance_to, subscribe_directly


def test_a_failed_renewal_heard_by_webhook_runs_to_cancel_and_pause(webhook_pipeline, tenant):
    app = webhook_pipeline.app
    customer, subscription_id = subscribe_directly(app, tenant.id)
    webhook_pipeline.wait()
    with app.app_context():
        failing = gateway().attach_payment_method(customer, "pm_card_chargeCustomerFail")
        gateway().set_default_payment_method(customer, failing.payment_method_id, subscription_id=subscription_id)
        period_end = db.session.get(App, tenant.id).current_subscription.current_period_end
    advance_to(app, period_end + timedelta(hours=1, minutes=30))  # the renewal is charged an hour after
    webhook_pipeline.wait()

    with app.app_context():  # day 0, recorded by the webhook handler alone
        first = db.session.scalar(select(KernelPaymentAttempt))
        assert (first.attempt_number, first.status.value) == (0, "failed")
        failed_at = first.attempted_at
        assert db.session.get(App, tenant.id).current_subscription.status.value == "past_due"

    steps = []
    for number in range(2, 8):
        advance_to(app, failed_at + timedelta(days=number, hours=1))
        webhook_pipeline.wait()
        result = run_now()
        steps.append((result["processed"], result["failed"]))
        webhook_pipeline.wait()
    assert steps == [(1, 0)] * 5 + [(2, 0)]  # on day 7 the newly paused app is reviewed too

    with app.app_context():
        attempts = db.session.scalars(select(KernelPaymentAttempt).order_by(KernelPaymentAttempt.attempt_number))
        assert [(a.attempt_number, a.status.value) for a in attempts] == [
            (0, "failed"), (1, "failed"), (2, "failed"), (3, "failed")]
        tenant_row = db.session.get(App, tenant.id)
        assert tenant_row.status == AppStatus.PAUSED
        assert tenant_row.current_subscription.status.value == "canceled"
        handled = db.session.scalars(select(ProcessedWebhook.status)).all()
        assert handled and WebhookStatus.FAILED not in handled

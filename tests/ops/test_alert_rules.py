"""Each alert rule: its condition planted, the alert raised once, then resolved when the condition clears."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from billing import audit
from billing.alert_rules import evaluate
from billing.models import (
    GatewayIdempotencyConflict,
    Alert,
    AlertSeverity,
    KernelInvoice,
    KernelPayment,
    MrrSnapshot,
    OutboxMessage,
    ProcessedWebhook,
    Role,
    WebhookStatus,
)
from billing.states import SubscriptionStatus as S
from jobs import alerts as alerts_job
from portal.extensions import db
from tests.helpers.data import make_user
from tests.ops import planting
from tests.ops.planting import DAY

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _open(kind: str) -> list[Alert]:
    return list(db.session.scalars(select(Alert).where(Alert.kind == kind, Alert.resolved_at.is_(None))))


def _run() -> None:
    evaluate(db.session, NOW)
    db.session.commit()


def _events(n: int, status: WebhookStatus, *, received_ago: float, processed_ago: float | None = None,
            prefix: str = "evt") -> list[ProcessedWebhook]:
    wall = datetime.now(timezone.utc)
    rows = [ProcessedWebhook(event_id=f"{prefix}_{i}", type="invoice.paid", created=0, livemode=False, payload="{}",
                             status=status, received_at=wall - timedelta(seconds=received_ago),
                             processed_at=None if processed_ago is None else wall - timedelta(seconds=processed_ago))
            for i in range(n)]
    db.session.add_all(rows)
    db.session.flush()
    return rows


def test_payment_failure_rate_over_10_percent_of_at_least_20_attempts(app):
    with app.app_context():
        payer = planting.any_app(db.session)
        for _ in range(3):
            planting.outcome(db.session, payer.id, "failed", NOW - timedelta(minutes=10), reason="card_declined")
        for _ in range(2):
            planting.outcome(db.session, payer.id, "succeeded", NOW - timedelta(minutes=10))
        _run()
        assert _open("payment_failure_rate") == [], "5 attempts are too few to call it an incident"
        for _ in range(15):
            planting.outcome(db.session, payer.id, "succeeded", NOW - timedelta(minutes=20))
        _run()
        _run()  # evaluated again: still one alert
        [alert] = _open("payment_failure_rate")
        assert alert.severity == AlertSeverity.CRITICAL and "3 of 20" in alert.message
        for _ in range(20):
            planting.outcome(db.session, payer.id, "succeeded", NOW - timedelta(minutes=5))
        _run()
        assert _open("payment_failure_rate") == []
        assert db.session.get(Alert, alert.id).resolved_at is not None


def test_mrr_down_more_than_20_percent_in_24_hours(app):
    with app.app_context():
        planting.subscription(db.session, S.ACTIVE, plan_code="enterprise", created_at=NOW - 60 * DAY)
        db.session.add(MrrSnapshot(taken_at=NOW - DAY - timedelta(minutes=30), day=(NOW - DAY).date(), currency="BRL",
                                   mrr=100_000, active_count=5, churn_base=5, churned_count=0, payments_succeeded=0,
                                   payments_failed=0))
        _run()
        [alert] = _open("mrr_drop")
        assert "100000 to 49900" in alert.message
        planting.subscription(db.session, S.ACTIVE, plan_code="enterprise", created_at=NOW - 60 * DAY)  # 99800
        _run()
        assert _open("mrr_drop") == []


def test_webhook_processing_over_5_seconds_by_oldest_waiting_event(app):
    with app.app_context():
        [waiting] = _events(1, WebhookStatus.RECEIVED, received_ago=30)
        _run()
        [alert] = _open("webhook_lag")
        waiting.status, waiting.processed_at = WebhookStatus.PROCESSED, datetime.now(timezone.utc)
        _run()
        assert _open("webhook_lag") == [] and db.session.get(Alert, alert.id).resolved_at is not None


def test_webhook_processing_over_5_seconds_by_p99(app):
    with app.app_context():
        slow = _events(20, WebhookStatus.PROCESSED, received_ago=70, processed_ago=60)  # 10 s each
        _run()
        [alert] = _open("webhook_lag")
        assert alert.details["p99_seconds"] == pytest.approx(10, abs=0.5)
        for row in slow:
            row.processed_at = row.received_at + timedelta(milliseconds=200)
        _run()
        assert _open("webhook_lag") == []


def test_retry_queue_over_100_events(app):
    with app.app_context():
        failed = _events(101, WebhookStatus.FAILED, received_ago=600, processed_ago=None)
        _run()
        [alert] = _open("retry_queue")
        assert "101" in alert.message
        failed[0].status = WebhookStatus.PROCESSED
        _run()
        assert _open("retry_queue") == []


def test_billing_gateway_idempotency_two_successful_charges_for_one_invoice(app):
    with app.app_context():
        payer = planting.any_app(db.session)
        invoice = KernelInvoice(app_id=payer.id, stripe_invoice_id="in_twice", status="paid", amount_due=9900,
                                amount_paid=9900, currency="BRL")
        db.session.add(invoice)
        db.session.flush()
        charges = [KernelPayment(app_id=payer.id, invoice_id=invoice.id, stripe_payment_intent_id=f"pi_twice{n}",
                                 amount=9900, currency="BRL", status="succeeded") for n in (1, 2)]
        db.session.add_all(charges)
        _run()
        [alert] = _open("BillingGatewayIdempotency")
        assert "in_twice" in alert.message and alert.severity == AlertSeverity.CRITICAL
        charges[1].amount_refunded = 9900  # the second charge given back in full
        _run()
        assert _open("BillingGatewayIdempotency") == []


def test_billing_gateway_idempotency_a_key_stripe_refused_in_the_last_15_minutes(app):
    with app.app_context():
        now = datetime.now(timezone.utc)
        refused = GatewayIdempotencyConflict(occurred_at=now - timedelta(minutes=2), request_id="req_conflict1",
                                             message="Keys for idempotent requests can only be used with the same "
                                                     "parameters they were first used with.")
        db.session.add_all([refused, GatewayIdempotencyConflict(occurred_at=now - timedelta(minutes=40),
                                                                request_id="req_long_ago")])
        _run()
        [alert] = _open("BillingGatewayIdempotency")
        assert alert.severity == AlertSeverity.CRITICAL
        assert "refused 1 reused idempotency key" in alert.message and "req_conflict1" in alert.message
        assert alert.details["conflicts_15m"] == 1 and alert.details["invoices"] == []
        refused.occurred_at = now - timedelta(minutes=16)  # 15 minutes without a refusal
        _run()
        assert _open("BillingGatewayIdempotency") == []


def test_a_rule_that_fires_again_after_clearing_opens_a_new_alert(app):
    with app.app_context():
        [waiting] = _events(1, WebhookStatus.RECEIVED, received_ago=30)
        _run()
        waiting.status = WebhookStatus.PROCESSED
        _run()
        _events(1, WebhookStatus.RECEIVED, received_ago=20, prefix="evt_again")
        _run()
        assert db.session.scalar(select(func.count(Alert.id)).where(Alert.kind == "webhook_lag")) == 2
        assert len(_open("webhook_lag")) == 1


def test_a_recovered_failed_payment_resolves_its_payment_intent_failed_alert(app):
    """The issue's case: an active tenant with every invoice paid showed one open alert."""
    with app.app_context():
        payer = planting.any_app(db.session)
        payment = KernelPayment(app_id=payer.id, stripe_payment_intent_id="pi_recovered", amount=9900, currency="BRL",
                                status="requires_payment_method", failure_code="card_declined")
        db.session.add(payment)
        audit.raise_alert(db.session, kind="payment_intent_failed", app_id=payer.id, message="failed",
                          details={"payment_intent": "pi_recovered"}, dedupe_key="payment_intent_failed:pi_recovered")
        _run()
        assert len(_open("payment_intent_failed")) == 1, "still failed: the alert stays"
        payment.status = "succeeded"
        _run()
        assert _open("payment_intent_failed") == []


def test_a_critical_alert_is_emailed_to_superadmins_when_smtp_is_configured(app):
    make_user(app, "root@kernel.test", role=Role.SUPERADMIN)
    with app.app_context():
        _events(1, WebhookStatus.RECEIVED, received_ago=30)
        evaluate(db.session, NOW, smtp_configured=False)
        db.session.commit()
        assert db.session.scalar(select(func.count(OutboxMessage.id))) == 0
        db.session.query(Alert).delete()
        evaluate(db.session, NOW, smtp_configured=True)
        evaluate(db.session, NOW, smtp_configured=True)
        db.session.commit()
        [message] = db.session.scalars(select(OutboxMessage)).all()
        assert (message.to_email, message.kind, message.status.value) == ("root@kernel.test", "alert.critical",
                                                                        "pending")


def test_the_job_evaluates_the_rules(app):
    with app.app_context():
        _events(1, WebhookStatus.RECEIVED, received_ago=30)
        db.session.commit()
    assert alerts_job.evaluate_rules()["raised"] == ["webhook_lag"]


def test_a_superadmin_acknowledges_a_rule_alert_which_stays_open(app, superadmin_client):
    with app.app_context():
        _events(1, WebhookStatus.RECEIVED, received_ago=30)
        _run()
        [alert] = _open("webhook_lag")
        alert_id = alert.id
    page = superadmin_client.get("/admin/alerts").get_data(as_text=True)
    assert "Acknowledge" in page and "Resolves by itself" in page
    superadmin_client.post(f"/admin/alerts/{alert_id}/resolve")
    superadmin_client.post(f"/admin/alerts/{alert_id}/acknowledge")
    with app.app_context():
        alert = db.session.get(Alert, alert_id)
        assert alert.resolved_at is None and alert.acknowledged_by_id is not None
    assert "Acknowledged by" in superadmin_client.get("/admin/alerts").get_data(as_text=True)


def test_a_paid_invoice_resolves_its_invoice_payment_failed_alert(app):
    with app.app_context():
        payer = planting.any_app(db.session)
        invoice = KernelInvoice(app_id=payer.id, stripe_invoice_id="in_first_failed", status="open", amount_due=9900,
                                amount_paid=0, currency="BRL")
        db.session.add(invoice)
        audit.raise_alert(db.session, kind="invoice_payment_failed", app_id=payer.id, message="failed",
                          details={"invoice": "in_first_failed"}, dedupe_key="invoice_payment_failed:in_first_failed")
        _run()
        assert len(_open("invoice_payment_failed")) == 1
        invoice.status, invoice.amount_paid = "paid", 9900
        _run()
        assert _open("invoice_payment_failed") == []


def test_a_healed_divergence_resolves_its_alert(app):
    from billing.models import ReconciliationDivergence, ReconciliationRun

    with app.app_context():
        run = ReconciliationRun(trigger="test", status="succeeded")
        db.session.add(run)
        alert = audit.raise_alert(db.session, kind="reconciliation_divergence", message="differs",
                                  dedupe_key="reconciliation:test")
        db.session.flush()
        divergence = ReconciliationDivergence(run_id=run.id, kind="status", object_type="subscription",
                                              stripe_id="sub_x", healable=True, alert_id=alert.id)
        db.session.add(divergence)
        _run()
        assert len(_open("reconciliation_divergence")) == 1
        divergence.healed_at = NOW
        _run()
        assert _open("reconciliation_divergence") == []

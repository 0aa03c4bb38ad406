"""billing.dunning.open_dunning: day 0 of dunning, recorded once however often the failure arrives."""
from datetime import datetime, timezone

from sqlalchemy import func, select

from billing.dunning import open_dunning, retry_schedule
from billing.models import Alert, App, KernelInvoice, KernelPaymentAttempt, OutboxMessage, OutboxStatus
from billing.audit import Origin
from portal.extensions import db

FAILED_AT = datetime(2026, 12, 1, 3, tzinfo=timezone.utc)


def _invoice(tenant_id: int) -> KernelInvoice:
    invoice = KernelInvoice(app_id=tenant_id, stripe_invoice_id="in_fail", number="ACME-0002", status="open",
                            amount_due=9900, amount_paid=0, currency="BRL")
    db.session.add(invoice)
    db.session.flush()
    return invoice


def test_failure_records_attempt_zero_alert_and_notice_once(app, tenant):
    with app.app_context():
        db.session.get(App, tenant.id).billing_email = "finance@acme.test"
        invoice = _invoice(tenant.id)
        for delivery in ("evt_1", "evt_1_again"):
            open_dunning(db.session, invoice, failed_at=FAILED_AT, failure_code="card_declined",
                         origin=Origin(actor="webhook", correlation_id=delivery))
        db.session.commit()
        attempts = db.session.scalars(select(KernelPaymentAttempt)).all()
        assert [(a.attempt_number, a.status.value, a.failure_code) for a in attempts] == [(0, "failed", "card_declined")]
        alert = db.session.scalar(select(Alert))
        assert alert.kind == "payment_failed" and alert.app_id == tenant.id
        assert db.session.scalar(select(func.count(Alert.id))) == 1
        notices = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.to_email)).all()
        assert [n.to_email for n in notices] == ["finance@acme.test", "owner@acme.test"]
        assert all(n.status == OutboxStatus.STORED for n in notices)
        # Billing records what happened; the words come from the template in the reader's language.
        assert notices[0].kind == "dunning.failed" and notices[0].body is None
        assert notices[0].data["next_retry_at"].startswith("2026-12-04")
        assert (notices[0].data["amount"], notices[0].data["currency"]) == (9900, "BRL")


def test_retries_fall_on_days_3_5_and_7():
    assert [d.day for d in retry_schedule(FAILED_AT)] == [4, 6, 8]

"""The dunning cycle driven by the sandbox's test clock and its fails-on-charge card.

Day 0 is recorded as the ``invoice.payment_failed`` handler records it; from then on
only the clock moves and the dunning job runs, once a day, as it would in production.
"""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, select

from billing.clock import business_date
from billing.models import (
    Alert,
    App,
    AppStatus,
    AuditLog,
    JobRun,
    KernelInvoice,
    KernelPaymentAttempt,
    OutboxMessage,
)
from jobs.dunning import run_now
from portal.extensions import db
from portal.payments import gateway
from tests.helpers.clients import pay_hosted_checkout
from tests.helpers.data import invoice_row
from tests.helpers.dunning import advance_to, day


def _run_on(application, dunning, number: int) -> dict:
    advance_to(application, day(dunning, number))
    result = run_now()
    assert result and result["status"] == "succeeded", result
    with application.app_context():
        return db.session.get(JobRun, result["run"]).details["steps"]


def _attempts(application, dunning) -> list[tuple[int, str, object]]:
    with application.app_context():
        rows = db.session.scalars(select(KernelPaymentAttempt).join(KernelInvoice)
                                  .where(KernelInvoice.stripe_invoice_id == dunning.invoice_id)
                                  .order_by(KernelPaymentAttempt.attempt_number)).all()
        return [(row.attempt_number, row.status.value,
                 business_date(row.attempted_at) if row.attempted_at else None) for row in rows]


def _notice_kinds(application, app_id: int) -> list[str]:
    with application.app_context():
        return list(db.session.scalars(select(OutboxMessage.kind).where(OutboxMessage.app_id == app_id)
                                       .order_by(OutboxMessage.id)))


def _pay_through_the_portal(client, app_id: int, card: str = "4242 4242 4242 4242"):
    page = client.get(f"/apps/{app_id}/pay")
    assert page.status_code == 200 and "R$99.00" in page.get_data(as_text=True)
    started = client.post(f"/apps/{app_id}/pay", data={"attempt": "attempt-token-1"})
    assert started.status_code == 303
    back = pay_hosted_checkout(started.headers["Location"], card_number=card)
    assert back.status_code in (302, 303)
    target = urlsplit(back.headers["Location"])
    assert target.path == f"/apps/{app_id}/pay/complete"
    return client.get(f"{target.path}?{target.query}")


def test_three_failed_retries_cancel_the_subscription_and_pause_the_app(billing_app, dunning, owner_client):
    failed_on = business_date(dunning.failed_at)
    steps = {number: _run_on(billing_app, dunning, number) for number in range(1, 8)}

    assert steps[1] == {"waiting": 1}
    assert steps[2] == {"notified": 1} and steps[4] == {"notified": 1} and steps[6] == {"notified": 1}
    assert steps[3] == {"retry_failed": 1} and steps[5] == {"retry_failed": 1}
    assert steps[7] == {"exhausted": 1}
    assert _attempts(billing_app, dunning) == [
        (0, "failed", failed_on),
        (1, "failed", failed_on + timedelta(days=3)),
        (2, "failed", failed_on + timedelta(days=5)),
        (3, "failed", failed_on + timedelta(days=7)),
    ]
    assert _notice_kinds(billing_app, dunning.app_id) == [
        "dunning.failed", "dunning.retry_notice", "dunning.retry_notice", "dunning.retry_notice", "dunning.canceled"]

    with billing_app.app_context():
        app = db.session.get(App, dunning.app_id)
        assert app.status == AppStatus.PAUSED and app.paused_at is not None and "canceled" in app.paused_reason
        assert app.current_subscription.status.value == "canceled"
        assert gateway().retrieve_subscription(dunning.subscription_id).status == "canceled"
        alert_keys = set(db.session.scalars(select(Alert.dedupe_key).where(Alert.app_id == app.id)))
        assert {f"payment_failed:{dunning.invoice_id}:{n}" for n in range(4)} <= alert_keys
        assert f"dunning_exhausted:{dunning.invoice_id}" in alert_keys
        paused = db.session.scalar(select(AuditLog).where(AuditLog.action == "app.paused"))
        assert paused.before == {"status": "active"} and paused.after["invoice"] == dunning.invoice_id
    assert invoice_row(billing_app, dunning.invoice_id).dunning_outcome == "exhausted"
    # Stripe saw the failed renewal and exactly three retries.
    with billing_app.app_context():
        assert gateway().retrieve_invoice(dunning.invoice_id).attempt_count == 4

    # The owner sees why and how to pay; paying reactivates the app.
    page = owner_client.get(f"/apps/{dunning.app_id}").get_data(as_text=True)
    assert "This app is paused because invoice" in page and f"/apps/{dunning.app_id}/pay" in page
    # Why, in the reader's language only (the stored reason is English, for the audit trail).
    assert "the renewal payment of invoice" in page and "failed 4 times" in page and "foi recusado" not in page
    pt = owner_client.get(f"/apps/{dunning.app_id}", headers={"Accept-Language": "pt-BR"}).get_data(as_text=True)
    assert "o pagamento da renovação da fatura" in pt and "failed 4 times" not in pt
    assert _run_on(billing_app, dunning, 8) == {}  # nothing left to retry
    done = _pay_through_the_portal(owner_client, dunning.app_id)
    assert done.status_code == 302
    with billing_app.app_context():
        app = db.session.get(App, dunning.app_id)
        assert app.status == AppStatus.ACTIVE and app.paused_reason is None
        assert db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "app.resumed")) == 1
    assert invoice_row(billing_app, dunning.invoice_id).status == "paid"


def test_success_on_the_second_retry_ends_dunning(billing_app, dunning):
    _run_on(billing_app, dunning, 2)
    assert _run_on(billing_app, dunning, 3) == {"retry_failed": 1}
    with billing_app.app_context():  # the owner fixes the card in Stripe before retry #2
        card = gateway().attach_payment_method(dunning.customer_id, "pm_card_visa")
        gateway().set_default_payment_method(dunning.customer_id, card.payment_method_id,
                                             subscription_id=dunning.subscription_id)
    assert _run_on(billing_app, dunning, 4) == {"notified": 1}
    assert _run_on(billing_app, dunning, 5) == {"recovered": 1}
    for number in (6, 7, 8):
        assert _run_on(billing_app, dunning, number) == {}

    failed_on = business_date(dunning.failed_at)
    assert _attempts(billing_app, dunning) == [
        (0, "failed", failed_on), (1, "failed", failed_on + timedelta(days=3)),
        (2, "succeeded", failed_on + timedelta(days=5))]
    invoice = invoice_row(billing_app, dunning.invoice_id)
    assert invoice.status == "paid" and invoice.amount_paid == 9900 and invoice.dunning_outcome == "paid"
    with billing_app.app_context():
        app = db.session.get(App, dunning.app_id)
        assert app.status == AppStatus.ACTIVE and app.current_subscription.status.value == "active"
        open_alerts = db.session.scalar(select(func.count(Alert.id)).where(
            Alert.app_id == app.id, Alert.kind == "payment_failed", Alert.resolved_at.is_(None)))
        assert open_alerts == 0
    assert _notice_kinds(billing_app, dunning.app_id)[-1] == "dunning.recovered"


def test_running_twice_on_the_same_day_makes_no_second_attempt(billing_app, dunning):
    _run_on(billing_app, dunning, 2)
    advance_to(billing_app, day(dunning, 3))
    first, second = run_now(), run_now()
    with billing_app.app_context():
        assert db.session.get(JobRun, first["run"]).details["steps"] == {"retry_failed": 1}
        assert db.session.get(JobRun, second["run"]).details["steps"] == {"waiting": 1}
        assert gateway().retrieve_invoice(dunning.invoice_id).attempt_count == 2  # day 0 and retry #1 only
    assert [number for number, _status, _day in _attempts(billing_app, dunning)] == [0, 1]


def test_the_owner_paying_during_dunning_ends_it(billing_app, dunning, owner_client):
    _run_on(billing_app, dunning, 2)
    _run_on(billing_app, dunning, 3)
    response = _pay_through_the_portal(owner_client, dunning.app_id)
    assert response.status_code == 302 and response.headers["Location"] == f"/apps/{dunning.app_id}/notices"

    invoice = invoice_row(billing_app, dunning.invoice_id)
    assert invoice.status == "paid" and invoice.dunning_outcome == "paid"
    with billing_app.app_context():
        app = db.session.get(App, dunning.app_id)
        assert app.current_subscription.status.value == "active"
        assert app.current_subscription.card_last4 == "4242"  # the new card is the default from now on
        closed = db.session.scalar(select(AuditLog).where(AuditLog.action == "dunning.closed"))
        assert closed.after == {"outcome": "paid", "paid_by": "owner"} and closed.actor == "user"
    for number in (4, 5, 6, 7):
        assert _run_on(billing_app, dunning, number) == {}
    assert [number for number, _status, _day in _attempts(billing_app, dunning)] == [0, 1]
    page = owner_client.get(f"/apps/{dunning.app_id}/notices").get_data(as_text=True)
    assert "Payment received" in page and "Pay now" not in page


def test_an_invoice_paid_in_stripe_meanwhile_ends_dunning_without_a_retry(billing_app, dunning):
    assert _run_on(billing_app, dunning, 2) == {"notified": 1}
    with billing_app.app_context():  # paid outside the portal (Stripe's hosted invoice page, say)
        card = gateway().attach_payment_method(dunning.customer_id, "pm_card_visa")
        gateway().pay_invoice(dunning.invoice_id, attempt="hosted-page", payment_method_id=card.payment_method_id)
    assert _run_on(billing_app, dunning, 3) == {"recovered": 1}

    failed_on = business_date(dunning.failed_at)
    assert _attempts(billing_app, dunning) == [(0, "failed", failed_on), (1, "canceled", None)]
    with billing_app.app_context():
        assert gateway().retrieve_invoice(dunning.invoice_id).attempt_count == 2  # day 0 and the outside payment
        closed = db.session.scalar(select(AuditLog).where(AuditLog.action == "dunning.closed"))
        assert closed.after == {"outcome": "paid", "paid_by": "stripe"} and closed.actor == "job:dunning"
    assert _notice_kinds(billing_app, dunning.app_id)[-1] == "dunning.recovered"


def test_a_retry_is_never_charged_without_notice_in_advance(billing_app, dunning):
    # The job did not run on day 2: on day 3 it announces the retry, and charges only on a later run.
    assert _run_on(billing_app, dunning, 3) == {"notified": 1}
    advance_to(billing_app, day(dunning, 3, hours=6))
    assert run_now()["processed"] == 1 and [n for n, *_ in _attempts(billing_app, dunning)] == [0, 1]
    assert _attempts(billing_app, dunning)[1][1] == "scheduled"
    advance_to(billing_app, day(dunning, 3, hours=14))
    result = run_now()
    with billing_app.app_context():
        assert db.session.get(JobRun, result["run"]).details["steps"] == {"retry_failed": 1}

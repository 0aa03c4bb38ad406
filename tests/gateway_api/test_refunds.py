"""Refunds under dual control: API and invoice requests, approval by a second superadmin, never above captures."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from billing.models import (
    AuditLog,
    GatewayCapture,
    KernelInvoice,
    KernelPayment,
    OutboxMessage,
    RefundRequest,
    RefundStatus,
)
from billing.money import Money
from portal.extensions import db
from portal.payments import gateway
from tests.helpers.clients import signed_in_client
from tests.helpers.data import short_session
from tests.helpers.gateway_api import Api, issue_key, unreachable_gateway


def paid_invoice(app, tenant, amount: int = 9900) -> tuple[int, int]:
    """An invoice of ``tenant`` paid through a real sandbox PaymentIntent; returns (invoice id, payment id)."""
    with app.app_context():
        customer = gateway().create_customer(app_id=tenant.id, email="owner@acme.test", name=tenant.name)
        intent = gateway().create_payment_intent(Money(amount, "BRL"), customer_id=customer.id,
                                                 payment_method_id="pm_card_visa", purpose=f"test:{tenant.id}")
    assert intent.status == "succeeded"
    with short_session(app) as session:
        invoice = KernelInvoice(app_id=tenant.id, stripe_invoice_id=f"in_test_{tenant.id}", number="ACME-0001",
                                status="paid", amount_due=amount, amount_paid=amount, currency="BRL")
        session.add(invoice)
        session.flush()
        payment = KernelPayment(app_id=tenant.id, invoice_id=invoice.id, stripe_payment_intent_id=intent.id,
                                amount=amount, currency="BRL", status="succeeded")
        session.add(payment)
        session.flush()
        return invoice.id, payment.id


def _refund_row(app, **filters) -> RefundRequest:
    with short_session(app) as session:
        return session.scalar(select(RefundRequest).filter_by(**filters).order_by(RefundRequest.id.desc()))


def _actions(app) -> list[str]:
    with short_session(app) as session:
        return list(session.scalars(select(AuditLog.action).where(AuditLog.object_type == "refund_request")
                                    .order_by(AuditLog.id)))


def test_an_api_refund_waits_for_a_superadmin_then_executes_and_notifies(api, gw_app, superadmin, sandbox):
    captured = api.captured("150.00")
    response = api.post("refunds", {"capture_id": captured["capture_id"], "amount": "50.00", "currency": "BRL",
                                    "reason": "double charge", "idempotency_key": "refund-1"})
    assert response.status_code == 202
    body = response.get_json()
    assert (body["status"], body["amount"], body["gateway_reference"]) == ("pending_approval", "50.00", None)
    assert sandbox.stats()["by_endpoint"].get("POST /v1/refunds", 0) == 0  # nothing refunded yet

    admin = signed_in_client(gw_app, superadmin)
    row = _refund_row(gw_app, public_id=body["refund_id"])
    assert admin.post(f"/admin/refunds/{row.id}/approve").status_code == 302
    done = api.get(f"refunds/{body['refund_id']}").get_json()
    assert done["status"] == "succeeded" and done["gateway_reference"].startswith("re_")
    with short_session(gw_app) as session:
        assert session.scalar(select(GatewayCapture.amount_refunded)) == 5000
        notices = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "refund.executed")).all()
        assert [n.to_email for n in notices] == ["owner@acme.test"]
        assert (notices[0].data["amount"], notices[0].data["currency"]) == (5000, "BRL")
    assert _actions(gw_app) == ["refund.requested", "refund.approved", "refund.executed"]


def test_the_requester_cannot_approve_a_second_superadmin_can(gw_app, tenant, superadmin, second_admin, sandbox):
    invoice_id, payment_id = paid_invoice(gw_app, tenant)
    first = signed_in_client(gw_app, superadmin)
    page = first.get(f"/admin/invoices/{invoice_id}/refunds")
    assert page.status_code == 200 and b"request-refund" in page.data
    first.post(f"/admin/invoices/{invoice_id}/refunds",
               data={"payment_id": payment_id, "amount": "30,00", "reason": "service outage"})
    row = _refund_row(gw_app, payment_id=payment_id)
    assert (row.status, row.amount, row.requested_by_user_id) == (RefundStatus.PENDING_APPROVAL, 3000, superadmin.id)

    refused = first.post(f"/admin/refunds/{row.id}/approve", follow_redirects=True)
    assert b"Another superadmin must approve" in refused.data
    assert _refund_row(gw_app, id=row.id).status == RefundStatus.PENDING_APPROVAL
    assert sandbox.stats()["by_endpoint"].get("POST /v1/refunds", 0) == 0

    second = signed_in_client(gw_app, second_admin)
    queue = second.get("/admin/refunds")
    assert b'data-action="approve"' in queue.data
    second.post(f"/admin/refunds/{row.id}/approve")
    executed = _refund_row(gw_app, id=row.id)
    assert executed.status == RefundStatus.SUCCEEDED and executed.decided_by_user_id == second_admin.id
    with short_session(gw_app) as session:
        assert session.get(KernelPayment, payment_id).amount_refunded == 3000
    with gw_app.app_context():
        refunds = gateway().list_refunds(payment_intent_id=executed.stripe_payment_intent_id)
    assert [(r.id, r.amount) for r in refunds] == [(executed.stripe_refund_id, 3000)]


def test_a_refused_refund_frees_its_amount(api, gw_app, superadmin):
    captured = api.captured("20.00")
    first = api.post("refunds", {"capture_id": captured["capture_id"], "reason": "all of it",
                                 "idempotency_key": "refund-all"})
    assert first.get_json()["amount"] == "20.00"
    more = api.post("refunds", {"capture_id": captured["capture_id"], "amount": "0.01", "currency": "BRL",
                                "reason": "one more cent", "idempotency_key": "refund-more"})
    assert more.status_code == 400 and "amount" in more.get_json()["error"]["fields"]
    row = _refund_row(gw_app, public_id=first.get_json()["refund_id"])
    signed_in_client(gw_app, superadmin).post(f"/admin/refunds/{row.id}/refuse", data={"note": "not agreed"})
    assert _refund_row(gw_app, id=row.id).status == RefundStatus.REFUSED
    again = api.post("refunds", {"capture_id": captured["capture_id"], "amount": "20.00", "currency": "BRL",
                                 "reason": "agreed now", "idempotency_key": "refund-again"})
    assert again.status_code == 202
    assert "refund.refused" in _actions(gw_app)


def test_below_the_threshold_a_refund_executes_at_once(api, gw_app):
    gw_app.config["BILLING_REFUND_APPROVAL_ABOVE"] = 5000
    captured = api.captured("150.00")
    small = api.post("refunds", {"capture_id": captured["capture_id"], "amount": "50.00", "currency": "BRL",
                                 "reason": "goodwill", "idempotency_key": "refund-small"})
    assert small.status_code == 201 and small.get_json()["status"] == "succeeded"
    large = api.post("refunds", {"capture_id": captured["capture_id"], "amount": "50.01", "currency": "BRL",
                                 "reason": "more", "idempotency_key": "refund-large"})
    assert large.status_code == 202 and large.get_json()["status"] == "pending_approval"


def test_bad_refund_input_gets_per_field_messages(api):
    captured = api.captured("10.00")
    response = api.post("refunds", {"capture_id": captured["capture_id"], "amount": "10.001", "currency": "BRL",
                                    "reason": "", "idempotency_key": "r-bad"})
    assert response.status_code == 400
    assert set(response.get_json()["error"]["fields"]) == {"amount", "reason"}
    wrong = api.post("refunds", {"capture_id": captured["capture_id"], "amount": "1.00", "currency": "USD",
                                 "reason": "x", "idempotency_key": "r-usd"})
    assert wrong.status_code == 400 and "currency" in wrong.get_json()["error"]["fields"]
    above = api.post("refunds", {"capture_id": captured["capture_id"], "amount": "10.01", "currency": "BRL",
                                 "reason": "x", "idempotency_key": "r-above"})
    assert above.status_code == 400 and "amount" in above.get_json()["error"]["fields"]


def test_a_refund_stripe_could_not_be_asked_is_retried_once(api, gw_app, superadmin, sandbox):
    captured = api.captured("40.00")
    refund_id = api.post("refunds", {"capture_id": captured["capture_id"], "reason": "broken",
                                     "idempotency_key": "r-retry"}).get_json()["refund_id"]
    row = _refund_row(gw_app, public_id=refund_id)
    admin = signed_in_client(gw_app, superadmin)
    with unreachable_gateway(gw_app):
        page = admin.post(f"/admin/refunds/{row.id}/approve", follow_redirects=True)
    assert b"can be retried" in page.data
    assert _refund_row(gw_app, id=row.id).status == RefundStatus.EXECUTING
    admin.post(f"/admin/refunds/{row.id}/retry")
    assert _refund_row(gw_app, id=row.id).status == RefundStatus.SUCCEEDED
    with gw_app.app_context():
        refunds = gateway().list_refunds(payment_intent_id=row.stripe_payment_intent_id)
    assert len(refunds) == 1


@pytest.mark.postgres
def test_concurrent_refund_requests_never_exceed_the_capture(postgres_backend, gw_app, tenant):
    api = Api(gw_app.test_client(), issue_key(gw_app, tenant))
    captured = api.captured("100.00")
    answers: list[int] = []
    barrier = threading.Barrier(8)

    def ask(number: int):
        client = Api(gw_app.test_client(), api.key)
        barrier.wait()
        response = client.post("refunds", {"capture_id": captured["capture_id"], "amount": "30.00",
                                           "currency": "BRL", "reason": "race", "idempotency_key": f"race-{number}"})
        answers.append(response.status_code)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(answers) == [202, 202, 202, 400, 400, 400, 400, 400]
    with gw_app.app_context():
        assert db.session.scalar(select(func.sum(RefundRequest.amount))) == 9000
        assert db.engine.dialect.name == "postgresql"

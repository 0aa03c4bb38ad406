"""GET /billing/reconciliation: the day's figures per gateway for the ERP, cut at midnight in São Paulo."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from billing.models import (
    AttemptStatus,
    KernelInvoice,
    KernelPayment,
    KernelPaymentAttempt,
    KernelRefund,
    ReconciliationDivergence,
    ReconciliationRun,
)
from portal.api_auth import issue_token
from tests.helpers.clients import signed_in_client
from tests.helpers.data import short_session

URL = "/billing/reconciliation"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture
def day_of_business(app, tenant):
    """Money moving around 2026-12-10 in São Paulo (UTC-3): some of it just inside, some just outside the day."""
    with short_session(app) as session:
        def invoice(stripe_id, amount, paid_at, status="paid"):
            row = KernelInvoice(app_id=tenant.id, stripe_invoice_id=stripe_id, status=status, amount_due=amount,
                                amount_paid=amount if status == "paid" else 0, currency="BRL", paid_at=paid_at)
            session.add(row)
            return row

        invoice("in_noon", 9900, utc(2026, 12, 10, 15))
        invoice("in_late_evening", 49900, utc(2026, 12, 11, 2, 59))  # 23:59 in São Paulo: still the 10th
        invoice("in_day_before", 9900, utc(2026, 12, 10, 2, 59))  # 23:59 on the 9th in São Paulo
        invoice("in_after", 9900, utc(2026, 12, 11, 3))  # 00:00 on the 11th
        failed = invoice("in_failed", 9900, None, status="open")
        session.flush()
        session.add(KernelPayment(app_id=tenant.id, stripe_payment_intent_id="pi_one_off", amount=1500,
                                  currency="BRL", status="succeeded", paid_at=utc(2026, 12, 10, 12)))
        # A payment of an invoice is counted through its invoice, never twice.
        session.add(KernelPayment(app_id=tenant.id, invoice_id=failed.id, stripe_payment_intent_id="pi_of_invoice",
                                  amount=9900, currency="BRL", status="succeeded", paid_at=utc(2026, 12, 10, 13)))
        session.add(KernelPaymentAttempt(app_id=tenant.id, invoice_id=failed.id, attempt_number=0,
                                         status=AttemptStatus.FAILED, attempted_at=utc(2026, 12, 10, 9)))
        session.add(KernelPaymentAttempt(app_id=tenant.id, invoice_id=failed.id, attempt_number=1,
                                         status=AttemptStatus.FAILED, attempted_at=utc(2026, 12, 13, 9)))
        session.add(KernelRefund(app_id=tenant.id, stripe_refund_id="re_1", amount=2000, currency="BRL",
                                 status="succeeded", created_at=utc(2026, 12, 10, 20)))
        session.add(KernelRefund(app_id=tenant.id, stripe_refund_id="re_failed", amount=3000, currency="BRL",
                                 status="failed", created_at=utc(2026, 12, 10, 20)))
        run = ReconciliationRun(trigger="nightly", status="succeeded", divergence_count=1,
                                started_at=utc(2026, 12, 10, 5))
        session.add(run)
        session.flush()
        session.add(ReconciliationDivergence(run_id=run.id, app_id=tenant.id, kind="amount", object_type="invoice",
                                             stripe_id="in_noon", local_value={"amount_due": 9800},
                                             stripe_value={"amount_due": 9900}, healable=True,
                                             created_at=utc(2026, 12, 10, 5, 1)))


def test_the_days_sums_follow_the_sao_paulo_cutoff(superadmin_client, day_of_business):
    response = superadmin_client.get(URL, query_string={"date": "2026-12-10", "gateway": "stripe"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["cutoff"] == {"timezone": "America/Sao_Paulo", "from": "2026-12-10T00:00:00-03:00",
                              "to": "2026-12-11T00:00:00-03:00"}
    assert body["paid"] == {"count": 3, "totals": [{"currency": "BRL", "amount": 9900 + 49900 + 1500}]}
    assert body["failed"] == {"count": 1, "totals": [{"currency": "BRL", "amount": 9900}]}
    assert body["refunded"] == {"count": 1, "totals": [{"currency": "BRL", "amount": 2000}]}
    assert body["divergences"]["count"] == 1
    assert body["divergences"]["items"][0]["ours"] == {"amount_due": 9800}
    assert body["divergences"]["items"][0]["stripe"] == {"amount_due": 9900}
    assert [run["divergences"] for run in body["reconciliation_runs"]] == [1]


def test_a_quiet_day_is_all_zeros(superadmin_client, day_of_business):
    body = superadmin_client.get(URL, query_string={"date": "2026-12-12"}).get_json()
    assert body["paid"] == body["failed"] == body["refunded"] == {"count": 0, "totals": []}
    assert body["divergences"] == {"count": 0, "items": []}


def test_a_superadmin_api_token_works_and_an_owner_gets_a_404(app, superadmin, owner, tenant, client):
    with short_session(app) as session:
        admin_token = issue_token(session, superadmin, "erp")
        owner_token = issue_token(session, owner, "mine")
    ok = client.get(URL, query_string={"date": "2026-12-10"}, headers={"Authorization": f"Bearer {admin_token}"})
    assert ok.status_code == 200 and ok.get_json()["gateway"] == "stripe"
    refused = client.get(URL, query_string={"date": "2026-12-10"}, headers={"Authorization": f"Bearer {owner_token}"})
    assert refused.status_code == 404 and refused.is_json
    assert signed_in_client(app, owner).get(URL, query_string={"date": "2026-12-10"}).status_code == 404
    anonymous = client.get(URL, query_string={"date": "2026-12-10"})
    assert anonymous.status_code == 401 and anonymous.is_json


def test_unknown_gateway_is_a_404(superadmin_client):
    response = superadmin_client.get(URL, query_string={"date": "2026-12-10", "gateway": "paypal"})
    assert response.status_code == 404 and response.get_json()["error"]["code"] == 404


@pytest.mark.parametrize("value", ["", "2026-13-01", "10/12/2026", "20261210", "2026-12-1", "yesterday"])
def test_a_bad_date_is_a_400(superadmin_client, value):
    response = superadmin_client.get(URL, query_string={"date": value, "gateway": "stripe"})
    assert response.status_code == 400 and "YYYY-MM-DD" in response.get_json()["error"]["message"]

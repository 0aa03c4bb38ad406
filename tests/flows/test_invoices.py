"""The invoices pages: list (newest first, paginated), detail with Stripe's lines, hosted page and PDF links."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select

from billing.models import KernelInvoice
from portal.extensions import db
from tests.helpers.data import short_session
from tests.helpers.clients import subscribe

ISSUED = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


def add_invoices(app, app_id: int, how_many: int, amount: int = 9900, prefix: str = "ACME") -> list[int]:
    """Invoices as the webhooks would have mirrored them, one a month, oldest first; their ids."""
    with short_session(app) as session:
        rows = [KernelInvoice(app_id=app_id, stripe_invoice_id=f"in_{prefix}_{n:04d}", number=f"{prefix}-{n:04d}",
                              status="paid", billing_reason="subscription_cycle", amount_due=amount,
                              amount_paid=amount, currency="BRL", created_at=ISSUED + timedelta(days=30 * n),
                              period_start=ISSUED + timedelta(days=30 * (n - 1)),
                              period_end=ISSUED + timedelta(days=30 * n), paid_at=ISSUED + timedelta(days=30 * n),
                              hosted_invoice_url=f"https://invoice.stripe.test/{n}",
                              invoice_pdf=f"https://invoice.stripe.test/{n}/pdf")
                for n in range(1, how_many + 1)]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def test_the_first_invoice_is_listed_with_its_links(billing_app, owner_http, tenant):
    subscribe(owner_http, tenant.id)
    page = owner_http.get(f"/apps/{tenant.id}/invoices").get_data(as_text=True)
    with short_session(billing_app) as session:
        invoice = session.scalar(select(KernelInvoice))
    assert f'data-invoice="{invoice.number}"' in page
    assert "R$99.00" in page and "badge-paid" in page and "First payment" in page
    assert f'href="{invoice.hosted_invoice_url}"' in page and f'href="{invoice.invoice_pdf}"' in page

    detail = owner_http.get(f"/apps/{tenant.id}/invoices/{invoice.id}").get_data(as_text=True)
    assert f"Invoice {invoice.number}" in detail and 'id="invoice-lines"' in detail
    assert 'id="amount-due">R$99.00<' in detail and 'id="hosted-invoice"' in detail and 'id="invoice-pdf"' in detail
    assert detail.count("R$99.00") >= 2  # the total and the plan's line


def test_the_detail_page_still_shows_the_invoice_when_stripe_is_down(billing_app, owner_http, tenant, sandbox):
    subscribe(owner_http, tenant.id)
    with short_session(billing_app) as session:
        invoice_id = session.scalar(select(KernelInvoice.id))
    sandbox.fail(count=20, status=503)
    response = owner_http.get(f"/apps/{tenant.id}/invoices/{invoice_id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'id="lines-unavailable"' in page and 'id="amount-due">R$99.00<' in page


def test_invoices_are_paginated_newest_first(app, owner_client, tenant):
    add_invoices(app, tenant.id, 25)
    first = owner_client.get(f"/apps/{tenant.id}/invoices").get_data(as_text=True)
    assert first.count("data-invoice=") == 20
    assert first.index('data-invoice="ACME-0025"') < first.index('data-invoice="ACME-0024"')
    assert 'data-invoice="ACME-0005"' not in first and "Page 1 of 2" in first

    second = owner_client.get(f"/apps/{tenant.id}/invoices?page=2").get_data(as_text=True)
    assert second.count("data-invoice=") == 5 and 'data-invoice="ACME-0001"' in second
    beyond = owner_client.get(f"/apps/{tenant.id}/invoices?page=99").get_data(as_text=True)
    assert "Page 2 of 2" in beyond


def _counts(app) -> list[str]:
    """The pagination's COUNT statements the portal runs from now on."""
    with app.app_context():
        engine = db.engine
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: seen.append(statement) if "count(" in statement.lower() else None)
    return seen


def test_a_page_that_is_not_full_is_its_own_total(app, owner_client, tenant):
    """The count is a second read: asked only when the page cannot tell the total (full, or past the end)."""
    add_invoices(app, tenant.id, 25)
    counts = _counts(app)
    first = owner_client.get(f"/apps/{tenant.id}/invoices").get_data(as_text=True)
    assert "Page 1 of 2" in first and len(counts) == 1  # full: there may be more

    counts.clear()
    second = owner_client.get(f"/apps/{tenant.id}/invoices?page=2").get_data(as_text=True)
    assert "Page 2 of 2" in second and second.count("data-invoice=") == 5 and counts == []

    counts.clear()
    beyond = owner_client.get(f"/apps/{tenant.id}/invoices?page=3").get_data(as_text=True)
    assert "Page 2 of 2" in beyond and beyond.count("data-invoice=") == 5 and len(counts) == 1


def test_an_app_with_a_few_invoices_is_listed_in_one_read(app, owner_client, tenant):
    add_invoices(app, tenant.id, 3)
    counts = _counts(app)
    page = owner_client.get(f"/apps/{tenant.id}/invoices").get_data(as_text=True)
    assert page.count("data-invoice=") == 3 and "Page 1 of" not in page and counts == []


def test_amounts_are_formatted_for_brazil(app, owner_client, tenant):
    add_invoices(app, tenant.id, 1, amount=123456)
    page = owner_client.get(f"/apps/{tenant.id}/invoices", headers={"Accept-Language": "pt-BR"})
    assert "R$\xa01.234,56" in page.get_data(as_text=True)


def test_an_app_without_invoices_says_so(app, owner_client, tenant):
    assert "No invoices yet." in owner_client.get(f"/apps/{tenant.id}/invoices").get_data(as_text=True)


@pytest.mark.parametrize("whose_app", ["mine", "theirs"])
def test_another_tenants_invoice_is_not_found(app, owner_client, tenant, other_tenant, whose_app):
    (theirs,) = add_invoices(app, other_tenant.id, 1, prefix="BRAVO")
    app_id = tenant.id if whose_app == "mine" else other_tenant.id
    assert owner_client.get(f"/apps/{app_id}/invoices/{theirs}").status_code == 404


def test_a_superadmin_reads_any_tenants_invoices(app, superadmin_client, tenant):
    add_invoices(app, tenant.id, 1)
    page = superadmin_client.get(f"/apps/{tenant.id}/invoices")
    assert page.status_code == 200 and 'data-invoice="ACME-0001"' in page.get_data(as_text=True)


def test_a_finalized_invoices_lines_are_asked_of_stripe_once(billing_app, owner_http, tenant, sandbox):
    """Stripe never changes a finalized invoice: its page keeps the lines it read (Stripe away later or not)."""
    subscribe(owner_http, tenant.id)
    with short_session(billing_app) as session:
        invoice_id = session.scalar(select(KernelInvoice.id))
    first = owner_http.get(f"/apps/{tenant.id}/invoices/{invoice_id}").get_data(as_text=True)
    assert 'id="invoice-lines"' in first
    sandbox.fail(count=20, status=503)
    again = owner_http.get(f"/apps/{tenant.id}/invoices/{invoice_id}").get_data(as_text=True)
    assert 'id="lines-unavailable"' not in again
    assert again[again.index('id="invoice-lines"'):] == first[first.index('id="invoice-lines"'):]

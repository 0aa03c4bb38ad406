"""A refund under dual control, in Chromium: one superadmin requests it from the invoice, another approves it."""
import pytest
from playwright.sync_api import expect

from billing.models import Role
from tests.helpers.data import make_user
from tests.flows.browser_steps import sign_in_as
from tests.gateway_api.test_refunds import paid_invoice

pytestmark = pytest.mark.browser


def test_a_refund_is_requested_by_one_superadmin_and_approved_by_another(page, billing_app, billing_server,
                                                                         superadmin, tenant, screenshot):
    second = make_user(billing_app, "second@kernel.test", role=Role.SUPERADMIN, name="Segunda Admin")
    invoice_id, _ = paid_invoice(billing_app, tenant, amount=9900)

    sign_in_as(page, billing_server, superadmin)
    page.goto(f"{billing_server.url}/admin/tenants/{tenant.id}")
    page.click(f"a[href='/admin/invoices/{invoice_id}/refunds']")
    expect(page.locator("#payments [data-refundable]")).to_have_text("R$\xa099,00")
    page.fill("#amount", "30,00")
    page.fill("#reason", "Indisponibilidade de 3 dias")
    page.click("#request-refund-button")
    expect(page.locator(".flash-success")).to_contain_text("outro superadmin precisa aprová-lo")
    expect(page.locator("#payments [data-refundable]")).to_have_text("R$\xa069,00")
    expect(page.locator("#refund-requests [data-status=pending_approval]")).to_have_count(1)
    screenshot(page, "admin-refund-request")

    page.goto(f"{billing_server.url}/admin/refunds")
    expect(page.locator("#refund-queue [data-action=approve]")).to_have_count(0)  # not for the requester

    page.context.clear_cookies()
    sign_in_as(page, billing_server, second)
    page.goto(f"{billing_server.url}/admin/refunds")
    expect(page.locator("#refund-queue tr[data-status=pending_approval]")).to_contain_text("R$\xa030,00")
    screenshot(page, "admin-refund-queue")
    page.click("#refund-queue [data-action=approve]")
    expect(page.locator(".flash-success")).to_contain_text("Reembolso efetuado")
    expect(page.locator("#refund-queue tr[data-status=succeeded]")).to_contain_text("por Segunda Admin")
    screenshot(page, "admin-refund-approved")

    page.goto(f"{billing_server.url}/admin/outbox")
    expect(page.locator("#outbox tr[data-kind='refund.executed']")).to_have_count(1)


def test_a_service_key_is_shown_once(page, billing_app, billing_server, superadmin, tenant, screenshot):
    sign_in_as(page, billing_server, superadmin)
    page.goto(f"{billing_server.url}/admin/service-keys")
    page.fill("#key-name", "Ferramenta de suporte")
    page.check("input[name=scopes][value=authorize]")
    page.check("input[name=scopes][value=refund]")
    page.click("#create-key button[type=submit]")
    secret = page.locator("#new-key-secret").inner_text()
    assert secret.startswith("kgw_")
    screenshot(page, "admin-service-key")
    page.goto(f"{billing_server.url}/admin/service-keys")
    expect(page.locator("#new-key")).to_have_count(0)
    expect(page.locator("#service-keys")).not_to_contain_text(secret)

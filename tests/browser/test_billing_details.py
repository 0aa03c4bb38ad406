"""Billing details in Chromium (issue 16, finding 10): reached from the billing page, refused with a clear error,
saved and sent to Stripe (the invoice page's "Billed to" is checked in tests/flows/test_billing_details.py)."""
import pytest
from playwright.sync_api import expect

from tests.flows.browser_steps import sign_in_as
from tests.helpers.clients import signed_in_client, subscribe

pytestmark = pytest.mark.browser


def test_the_owner_enters_billing_details_and_the_invoice_shows_them(page, billing_app, billing_server, owner,
                                                                     tenant, screenshot):
    subscribe(signed_in_client(billing_app, owner), tenant.id, "pro")
    sign_in_as(page, billing_server, owner)
    page.goto(f"{billing_server.url}/apps/{tenant.id}/billing")
    page.click("#edit-billing-details")
    expect(page.get_by_role("heading", name="Dados de cobrança")).to_be_visible()

    page.get_by_label("Razão social ou nome completo").fill("Acme Analytics Ltda")
    page.get_by_label("CPF ou CNPJ").fill("11.222.333/0001-82")
    page.get_by_label("E-mail de cobrança").fill("financeiro@acme.com.br")
    page.get_by_label("CEP").fill("01310-100")
    page.get_by_label("Logradouro").fill("Avenida Paulista")
    page.get_by_label("Número").fill("1000")
    page.get_by_label("Bairro").fill("Bela Vista")
    page.get_by_label("Cidade").fill("São Paulo")
    page.get_by_label("Estado").select_option("SP")
    page.click("#save-billing-details")
    expect(page.locator("#form-errors")).to_have_text("Corrija os campos indicados abaixo. Nada foi salvo.")
    expect(page.locator(".field-error", has_text="Este CPF ou CNPJ não é válido")).to_be_visible()

    page.get_by_label("CPF ou CNPJ").fill("11.222.333/0001-81")
    page.click("#save-billing-details")
    expect(page.locator(".flash-success")).to_contain_text("Seus dados de cobrança foram salvos.")
    expect(page.get_by_label("CPF ou CNPJ")).to_have_value("11.222.333/0001-81")
    expect(page.locator("#synced")).to_contain_text("Enviados à Stripe em")
    screenshot(page, "billing-details")

    page.goto(f"{billing_server.url}/apps/{tenant.id}/billing")
    expect(page.locator("#billing-details-summary")).to_contain_text("11.222.333/0001-81")

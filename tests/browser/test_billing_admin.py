"""The superadmin sees every tenant; an owner sees only their own, in Chromium."""
import pytest
from playwright.sync_api import expect

from billing import audit
from billing.models import AlertSeverity
from tests.helpers.clients import signed_in_client, subscribe
from tests.helpers.data import short_session
from tests.flows.browser_steps import sign_in_as

pytestmark = pytest.mark.browser


@pytest.fixture
def acme_pays_bravo_free(billing_app, owner, tenant, other_tenant):
    subscribe(signed_in_client(billing_app, owner), tenant.id, "pro")
    with short_session(billing_app) as session:
        audit.raise_alert(session, kind="payment_failed", message="Pagamento da renovação recusado (teste)",
                          app_id=tenant.id, severity=AlertSeverity.CRITICAL, dedupe_key="browser:acme")


def test_superadmin_sees_both_tenants(page, billing_app, billing_server, superadmin, tenant, acme_pays_bravo_free,
                                      screenshot):
    sign_in_as(page, billing_server, superadmin)
    page.goto(f"{billing_server.url}/admin/")
    acme, bravo = page.locator("tr[data-app=acme]"), page.locator("tr[data-app=bravo]")
    expect(acme.locator(".plan")).to_have_text("Pro")
    expect(acme.locator(".status")).to_contain_text("Ativa")
    expect(acme.locator(".mrr")).to_have_text("R$\xa099,00")
    expect(acme.locator(".alerts")).to_have_text("1")
    expect(bravo.locator(".plan")).to_have_text("Gratuito")
    expect(page.locator("#mrr-total")).to_have_text("R$\xa099,00")
    screenshot(page, "admin-tenants")

    page.select_option("#plan", "free")
    page.click("#tenant-filters button[type=submit]")
    expect(page.locator("tr[data-app]")).to_have_count(1)
    expect(page.locator("tr[data-app=bravo]")).to_be_visible()

    page.goto(f"{billing_server.url}/admin/tenants/{tenant.id}")
    expect(page.locator("#subscriptions")).to_contain_text("Visa •••• 4242")
    expect(page.locator("#alerts")).to_contain_text("Pagamento da renovação recusado")
    expect(page.locator("#audit-trail tr[data-action='checkout.subscription.completed']")).to_have_count(1)
    screenshot(page, "admin-tenant")

    page.click("#alerts button[type=submit]")
    expect(page.locator(".flash-success")).to_have_text("Alerta resolvido.")
    expect(page.locator("#alerts")).to_contain_text("Nenhum alerta em aberto.")
    page.goto(f"{billing_server.url}/admin/audit")
    expect(page.locator("#audit tr[data-action='alert.resolved']")).to_have_count(1)
    screenshot(page, "admin-audit")


def test_an_owner_sees_only_their_tenant(page, billing_app, billing_server, other_owner, tenant, other_tenant,
                                         acme_pays_bravo_free):
    sign_in_as(page, billing_server, other_owner)
    expect(page.locator("tr[data-app=bravo]")).to_be_visible()
    expect(page.locator("tr[data-app=acme]")).to_have_count(0)
    assert page.goto(f"{billing_server.url}/admin/").status == 404
    assert page.goto(f"{billing_server.url}/apps/{tenant.id}/billing").status == 404
    assert page.goto(f"{billing_server.url}/apps/{tenant.id}/invoices").status == 404

"""A superadmin on a customer's billing page: read-only under a banner naming the tenant, acting only after an
explicit, audited step; their app list says whose each app is. In Chromium, with screenshots."""
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from billing.models import AuditLog
from tests.helpers.clients import signed_in_client, subscribe
from tests.helpers.data import short_session, subscription_of
from tests.flows.browser_steps import sign_in_as

pytestmark = pytest.mark.browser


def _audit(app, app_id: int, action: str) -> list[AuditLog]:
    with short_session(app) as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.app_id == app_id, AuditLog.action == action)))


def test_a_superadmin_reads_then_acts_on_purpose(page, billing_app, billing_server, owner, superadmin, tenant,
                                                 other_tenant, screenshot):
    subscribe(signed_in_client(billing_app, owner), tenant.id, "pro")
    sign_in_as(page, billing_server, superadmin)

    expect(page.locator("h1")).to_have_text("Todos os apps")
    expect(page.locator("tr[data-app=acme] .owners")).to_contain_text("owner@acme.test")
    expect(page.locator("tr[data-app=bravo] .owners")).to_contain_text("owner@bravo.test")
    expect(page.locator("tr[data-app=acme]").get_by_role("link", name="Ver")).to_be_visible()
    screenshot(page, "admin-all-apps")

    billing = f"{billing_server.url}/apps/{tenant.id}/billing"
    page.goto(billing)
    banner = page.locator("#admin-banner")
    expect(banner).to_contain_text("Acme Analytics")
    expect(banner).to_contain_text("somente leitura")
    expect(banner).to_contain_text("owner@acme.test")
    expect(page.locator("#update-card")).to_have_count(0)
    expect(page.locator("[data-plan=enterprise] .plan-action .button")).to_have_count(0)
    screenshot(page, "admin-read-only")

    # Even a hand-made request changes nothing while read-only.
    token = page.locator("#admin-banner input[name=csrf_token]").first.input_value()
    refused = page.request.post(f"{billing}/cancel",
                                form={"csrf_token": token})
    assert refused.status == 403
    assert "Agir como administrador" in refused.text()
    assert subscription_of(billing_app, tenant.id).cancel_at_period_end is False

    page.click("#admin-banner summary")
    page.fill("#act-reason", "Cliente pediu por telefone para trocar o cartão (chamado 4411)")
    page.click("#start-acting")
    expect(banner).to_contain_text("Agindo como administrador")
    expect(page.locator("#update-card")).to_be_visible()
    expect(page.locator("[data-plan=enterprise] .plan-action .button")).to_be_visible()
    started = _audit(billing_app, tenant.id, "admin.acting.started")
    assert len(started) == 1 and started[0].actor_user_id == superadmin.id
    assert started[0].after["reason"] == "Cliente pediu por telefone para trocar o cartão (chamado 4411)"
    screenshot(page, "admin-acting")

    # Acting covers that one app only.
    page.goto(f"{billing_server.url}/apps/{other_tenant.id}/billing")
    expect(page.locator("#admin-banner")).to_contain_text("somente leitura")

    page.goto(billing)
    page.click("#stop-acting")
    expect(page.locator("#admin-banner")).to_contain_text("somente leitura")
    expect(page.locator("#update-card")).to_have_count(0)
    assert len(_audit(billing_app, tenant.id, "admin.acting.stopped")) == 1


def test_an_owner_sees_no_admin_banner(page, billing_server, owner, tenant):
    sign_in_as(page, billing_server, owner)
    page.goto(f"{billing_server.url}/apps/{tenant.id}/billing")
    expect(page.locator("h1")).to_have_text("Acme Analytics")
    expect(page.locator("#admin-banner")).to_have_count(0)

"""The plan page helps choose and says what holds, in Chromium (pt-BR): what each plan includes, one name for the
free plan, switching to Free through a reason step, and a canceled plan reading "ends on" on every page, never
"Ativa"; a plan that cannot be chosen says why."""
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from billing.models import AuditLog
from tests.helpers.clients import signed_in_client, subscribe
from tests.helpers.data import short_session
from tests.flows.browser_steps import sign_in_as

pytestmark = pytest.mark.browser


def test_cancel_from_the_plan_page_reads_the_same_everywhere(page, billing_app, billing_server, owner, tenant,
                                                            screenshot):
    subscribe(signed_in_client(billing_app, owner), tenant.id, "enterprise")
    sign_in_as(page, billing_server, owner)
    page.goto(f"{billing_server.url}/apps/{tenant.id}/billing")

    free = page.locator("[data-plan=free]")
    expect(free.locator("h3")).to_have_text("Gratuito")
    expect(free.locator(".plan-price")).to_contain_text("R$\xa00,00")
    for code in ("free", "pro", "enterprise"):
        assert page.locator(f"[data-plan={code}] .plan-features li").count() >= 3
    expect(page.locator(".plans .button-danger")).to_have_count(0)
    assert "Gratuito Gratuito" not in page.locator("body").inner_text()
    expect(page.locator("#current-plan .badge")).to_have_text("Ativa")
    screenshot(page, "plan-page")

    free.locator(".plan-action .button").click()
    expect(page.locator("#cancel-reasons input[type=radio]")).to_have_count(7)
    page.check("#cancel-reasons input[value=too_expensive]")
    page.click("#confirm-cancel")

    badge = page.locator("#current-plan .badge")
    expect(badge).to_have_attribute("data-state", "canceling")
    expect(badge).to_contain_text("Termina em")
    expect(page.locator("#current-plan")).not_to_contain_text("Ativa")
    why = page.locator("[data-plan=pro] .plan-why")
    expect(why).to_contain_text("Retome")  # what to do, not just "unavailable"
    screenshot(page, "plan-page-canceling")
    with short_session(billing_app) as session:
        reason = session.scalar(select(AuditLog).where(AuditLog.action == "subscription.cancel_reason"))
        assert reason is not None and reason.after == {"reason": "too_expensive"}

    page.goto(f"{billing_server.url}/apps/{tenant.id}")
    expect(page.locator("#overview-plan .badge")).to_contain_text("Termina em")
    expect(page.locator("#overview-plan")).not_to_contain_text("Ativa")
    page.goto(f"{billing_server.url}/dashboard")
    row = page.locator("tr[data-app=acme]")
    expect(row.locator(".badge")).to_contain_text("Termina em")
    expect(row).not_to_contain_text("Ativa")

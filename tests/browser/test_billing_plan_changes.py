"""Downgrade scheduled and undone, cancel and resume, in Chromium."""
import pytest
from playwright.sync_api import expect

from tests.helpers.clients import signed_in_client, subscribe
from tests.flows.browser_steps import choose_plan, sign_in_as
from tests.helpers.data import subscription_of

pytestmark = pytest.mark.browser


def test_downgrade_is_scheduled_then_undone(page, billing_app, billing_server, owner, tenant, screenshot):
    subscribe(signed_in_client(billing_app, owner), tenant.id, "enterprise")
    sign_in_as(page, billing_server, owner)
    choose_plan(page, billing_server, tenant.id, "pro")
    expect(page.locator("#downgrade-confirm")).to_contain_text("Você mantém o Enterprise até")
    screenshot(page, "downgrade-confirm")
    page.click("#confirm-downgrade")

    expect(page.locator("#scheduled-change")).to_contain_text("Pro a partir de")
    expect(page.locator("#plan-name")).to_have_text("Enterprise")
    expect(page.locator("[data-plan=pro]")).to_contain_text("A partir de")
    screenshot(page, "billing-downgrade-scheduled")
    assert subscription_of(billing_app, tenant.id).scheduled_plan.code == "pro"

    page.click("#undo-downgrade")
    expect(page.locator(".flash-success")).to_have_text(
        "A redução agendada foi desfeita. Seu plano continua como está.")
    expect(page.locator("#scheduled-change")).to_have_count(0)
    expect(page.locator("#plan-name")).to_have_text("Enterprise")
    assert subscription_of(billing_app, tenant.id).scheduled_plan is None


def test_cancel_keeps_access_until_the_date_then_resume(page, billing_app, billing_server, owner, tenant, screenshot):
    subscribe(signed_in_client(billing_app, owner), tenant.id, "pro")
    sign_in_as(page, billing_server, owner)
    choose_plan(page, billing_server, tenant.id, "free")
    expect(page.locator("#cancel-confirm")).to_contain_text("mantém o Pro até")
    page.click("#confirm-cancel")

    expect(page.locator("#cancellation")).to_contain_text("Cancelada: acesso até")
    expect(page.locator("#current-plan dt", has_text="Acesso até")).to_be_visible()
    expect(page.locator("#access-until")).not_to_be_empty()
    expect(page.locator("#plan-name")).to_have_text("Pro")
    screenshot(page, "billing-canceled")
    assert subscription_of(billing_app, tenant.id).cancel_at_period_end

    page.click("#resume")
    expect(page.locator(".flash-success")).to_contain_text("Sua assinatura será renovada normalmente.")
    expect(page.locator("#cancellation")).to_have_count(0)
    expect(page.locator("#renews-on")).to_be_visible()
    assert not subscription_of(billing_app, tenant.id).cancel_at_period_end

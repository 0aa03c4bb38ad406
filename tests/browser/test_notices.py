"""The Notices tab after a flow (issue 16, finding 4): every change confirmed, in the reader's language, in Chromium."""
import pytest
from playwright.sync_api import expect

from tests.flows.browser_steps import choose_plan, sign_in_as
from tests.helpers.clients import signed_in_client, subscribe

pytestmark = pytest.mark.browser


def test_the_notices_tab_confirms_a_subscription_a_cancel_and_a_resume(page, billing_app, billing_server, owner,
                                                                       tenant, screenshot):
    subscribe(signed_in_client(billing_app, owner), tenant.id, "pro")
    sign_in_as(page, billing_server, owner)
    choose_plan(page, billing_server, tenant.id, "free")
    page.click("#confirm-cancel")
    expect(page.locator("#cancellation")).to_be_visible()
    page.click("#resume")
    expect(page.locator("#renews-on")).to_be_visible()

    page.get_by_role("link", name="Avisos").click()
    notices = page.locator("article.outbox-notice")
    expect(notices).to_have_count(3)  # newest first
    expect(notices.nth(0)).to_have_attribute("data-kind", "subscription.resumed")
    expect(notices.nth(0)).to_contain_text("Assinatura retomada")
    expect(notices.nth(1)).to_contain_text("Assinatura cancelada: acesso até")
    expect(notices.nth(2)).to_contain_text("Assinatura confirmada: Pro")
    expect(notices.nth(2)).to_contain_text("Cobramos R$\xa099,00")
    expect(page.locator(".empty")).to_have_count(0)
    screenshot(page, "notices-after-a-flow")

"""Upgrading Pro -> Enterprise in Chromium: the preview shows the reference case's R$ 200,00, which is charged."""
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from billing.models import KernelInvoice
from tests.helpers.data import short_session, subscription_of
from tests.flows.browser_steps import choose_plan, fill_card, sign_in_as
from tests.flows.test_plan_changes import halfway_through_the_period, start_of_a_thirty_day_month

pytestmark = pytest.mark.browser


def test_upgrade_preview_matches_the_reference_case_and_is_charged(page, billing_app, billing_server, sandbox, owner,
                                                                   tenant, screenshot):
    start_of_a_thirty_day_month(billing_app, sandbox)  # before subscribing: the period then lasts 30 days
    sign_in_as(page, billing_server, owner)
    choose_plan(page, billing_server, tenant.id, "pro")
    fill_card(page)
    page.click("#submit")
    expect(page.locator("#plan-name")).to_have_text("Pro")
    halfway_through_the_period(billing_app, sandbox, tenant.id)  # 15 of 30 days left

    choose_plan(page, billing_server, tenant.id, "enterprise")
    expect(page).to_have_url(f"{billing_server.url}/apps/{tenant.id}/billing/upgrade?plan=enterprise")
    expect(page.locator("#credit")).to_have_text("-R$\xa049,50")
    expect(page.locator("#charge")).to_have_text("R$\xa0249,50")
    expect(page.locator("#amount-now")).to_have_text("R$\xa0200,00")
    expect(page.locator("#next-amount")).to_have_text("R$\xa0499,00 por mês")
    screenshot(page, "upgrade-preview")

    page.click("#confirm-upgrade")
    expect(page).to_have_url(f"{billing_server.url}/apps/{tenant.id}/billing")
    expect(page.locator(".flash-success")).to_have_text(
        "Seu app agora está no Enterprise. Foram cobrados R$\xa0200,00.")
    expect(page.locator("#plan-name")).to_have_text("Enterprise")
    screenshot(page, "billing-upgraded")
    assert subscription_of(billing_app, tenant.id).plan.code == "enterprise"
    with short_session(billing_app) as session:
        charged = session.scalar(select(KernelInvoice.amount_paid)
                                 .where(KernelInvoice.billing_reason == "subscription_update"))
    assert charged == 20000

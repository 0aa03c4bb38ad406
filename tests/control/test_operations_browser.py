"""In Chromium: a superadmin reads the money dashboard and the lists, pauses billing (the owner sees the notice),
resumes one app first, then every app. Screenshots go to docs/screenshots/ for the README."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.control.test_money_pages import books  # noqa: F401 (fixture)
from tests.flows.browser_steps import sign_in_as

pytestmark = pytest.mark.browser


def test_dashboard_pause_and_resume(page, browser, app, live_server, superadmin, owner, books,  # noqa: F811
                                    screenshot):  # noqa: F811
    acme = books[0]
    sign_in_as(page, live_server, superadmin)
    page.goto(f"{live_server.url}/admin/dashboard")
    expect(page.locator("[data-currency=BRL] .mrr")).to_have_text("R$\xa0598,00")
    expect(page.locator("svg.chart polyline").first).to_be_visible()
    expect(page.locator("#revenue-by-plan tr[data-plan]")).to_have_count(2)
    screenshot(page, "admin-dashboard")
    page.goto(f"{live_server.url}/admin/subscriptions?status=active")
    expect(page.locator("#subscriptions tr[data-subscription]")).to_have_count(2)
    screenshot(page, "admin-subscriptions")

    page.goto(f"{live_server.url}/admin/operations")
    page.fill("#reason", "Cobranças em dobro em investigação")
    page.click("#pause-form button[type=submit]")
    expect(page.locator("#billing-paused-banner")).to_contain_text("Cobranças em dobro em investigação")
    expect(page.locator("#release-ledger tr[data-kind=billing_paused]")).to_have_count(1)
    screenshot(page, "admin-operations-paused")

    owner_page = browser.new_context(locale="pt-BR", viewport={"width": 1280, "height": 800}).new_page()
    sign_in_as(owner_page, live_server, owner)
    owner_page.goto(f"{live_server.url}/apps/{acme.id}/invoices")
    expect(owner_page.locator("#billing-paused-banner")).to_be_visible()
    expect(owner_page.locator("#billing-paused-banner")).not_to_contain_text("dobro")  # the reason stays inside
    screenshot(owner_page, "owner-billing-paused")

    page.check(f"#resume-some-form input[value='{acme.id}']")
    page.click("#resume-some-form button[type=submit]")
    expect(page.locator("#resumed-apps")).to_contain_text("Acme Analytics")
    owner_page.reload()
    expect(owner_page.locator("#billing-paused-banner")).to_have_count(0)  # Acme runs again
    page.click("#resume-all-form button[type=submit]")
    expect(page.locator("#billing-state")).to_contain_text("Cobrança ativa")
    expect(page.locator("#billing-paused-banner")).to_have_count(0)
    expect(page.locator("#release-ledger tr[data-kind=billing_resumed]")).to_have_count(2)
    screenshot(page, "admin-operations")
    owner_page.context.close()

"""Signing in through the real page, in Chromium."""
import pytest
from playwright.sync_api import expect

from tests.helpers.browser import sign_in
from tests.helpers.data import PASSWORD

pytestmark = pytest.mark.browser


def test_owner_signs_in_and_sees_the_dashboard(page, live_server, owner, tenant, other_tenant, screenshot):
    page.goto(f"{live_server.url}/login")
    expect(page.locator(".sandbox-banner")).to_be_visible()
    screenshot(page, "login")
    sign_in(page, live_server.url, owner.email, PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/dashboard")
    expect(page.locator("h1")).to_have_text("Meus apps")
    expect(page.locator("tr[data-app=acme]")).to_contain_text("Acme Analytics")
    expect(page.locator("tr[data-app=bravo]")).to_have_count(0)
    screenshot(page, "dashboard")


def test_wrong_password_shows_an_error_in_the_page(page, live_server, owner):
    sign_in(page, live_server.url, owner.email, "not-the-password")
    expect(page.locator(".flash-error")).to_have_text("E-mail ou senha inválidos.")
    expect(page).to_have_url(f"{live_server.url}/login")


def test_language_switch_in_the_browser(page, live_server, owner, tenant):
    sign_in(page, live_server.url, owner.email, PASSWORD)
    page.click("button[name=lang][value=en]")
    expect(page.locator("h1")).to_have_text("My apps")

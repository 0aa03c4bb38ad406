"""At 390 px (a phone) every table keeps what matters: an invoice's status, when it was paid and its links,
an app's plan and its Manage button; the admin's tabs stay on one line. Screenshots go to the README."""
import pytest
from playwright.sync_api import expect

from tests.helpers.clients import signed_in_client, subscribe
from tests.flows.browser_steps import sign_in_as

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def _fits_the_screen(page) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]


def test_an_owner_on_a_phone_sees_status_and_actions(page, billing_app, billing_server, owner, tenant, screenshot):
    subscribe(signed_in_client(billing_app, owner), tenant.id, "pro")
    page.set_viewport_size(PHONE)
    sign_in_as(page, billing_server, owner)

    app_row = page.locator("tr[data-app=acme]")
    expect(app_row.get_by_role("link", name="Gerenciar")).to_be_visible()
    expect(app_row).to_contain_text("Pro")
    _fits_the_screen(page)
    screenshot(page, "phone-dashboard")

    page.goto(f"{billing_server.url}/apps/{tenant.id}/invoices")
    invoice = page.locator("#invoices tbody tr[data-invoice]").first
    status = invoice.locator(".badge")
    expect(status).to_be_visible()
    expect(status).to_have_text("Paga")
    paid_on = invoice.locator("td[data-label='Paga em']")
    expect(paid_on).to_be_visible()
    expect(invoice.get_by_role("link", name="Ver")).to_be_visible()
    expect(invoice.get_by_role("link", name="PDF")).to_be_visible()
    # One card per invoice: the status sits below the number, not in a column pushed off the screen.
    assert status.bounding_box()["y"] > invoice.locator("a.strong").bounding_box()["y"]
    _fits_the_screen(page)
    screenshot(page, "phone-invoices")

    page.goto(f"{billing_server.url}/apps/{tenant.id}/billing")
    expect(page.locator("#current-plan")).to_be_visible()
    expect(page.locator("[data-plan=enterprise] .plan-action .button")).to_be_visible()
    _fits_the_screen(page)
    screenshot(page, "phone-billing")


def test_the_admin_tabs_stay_on_one_line_on_a_phone(page, billing_server, superadmin):
    page.set_viewport_size(PHONE)
    sign_in_as(page, billing_server, superadmin)
    page.goto(f"{billing_server.url}/admin/")
    tabs = page.locator("nav.subnav a")
    tops = {round(tabs.nth(i).bounding_box()["y"]) for i in range(tabs.count())}
    assert len(tops) == 1, "the admin tabs wrapped onto several lines"
    _fits_the_screen(page)
    tabs.last.focus()  # the bar scrolls sideways to the focused tab
    expect(tabs.last).to_be_in_viewport()

"""Steps the billing browser tests share: signing in, paying on the sandbox's hosted Checkout page."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.helpers.browser import sign_in
from tests.helpers.data import PASSWORD


def sign_in_as(page, server, user) -> None:
    sign_in(page, server.url, user.email, PASSWORD)
    expect(page).to_have_url(f"{server.url}/dashboard")


def fill_card(page, number: str = "4242 4242 4242 4242") -> None:
    """Fill the hosted Checkout form (the sandbox's page, Stripe's field ids)."""
    expect(page.locator("#cardNumber")).to_be_visible()
    if page.locator("#email").is_editable():
        page.fill("#email", "owner@acme.test")
    page.fill("#cardNumber", number)
    page.fill("#cardExpiry", "12 / 34")
    page.fill("#cardCvc", "123")
    page.fill("#billingName", "Ana Owner")


def choose_plan(page, server, app_id: int, plan: str) -> None:
    """On the billing page, press the plan card's button (Subscribe, Upgrade, Downgrade...)."""
    page.goto(f"{server.url}/apps/{app_id}/billing")
    page.locator(f"[data-plan={plan}] .plan-action .button").click()

"""Choosing a plan and paying on the hosted Checkout page, in Chromium: a good card and a declined one."""
import pytest
from playwright.sync_api import expect

from billing.models import AppSubscription
from billing.states import SubscriptionStatus
from tests.flows.browser_steps import choose_plan, fill_card, sign_in_as
from tests.helpers.clients import signed_in_client, subscribe
from tests.helpers.data import count, subscription_of

pytestmark = pytest.mark.browser


def test_owner_subscribes_to_pro_with_4242(page, billing_app, billing_server, owner, tenant, screenshot):
    sign_in_as(page, billing_server, owner)
    page.goto(f"{billing_server.url}/apps/{tenant.id}/billing")
    expect(page.locator("#plan-name")).to_have_text("Gratuito")
    screenshot(page, "billing-free")

    choose_plan(page, billing_server, tenant.id, "pro")
    fill_card(page)
    expect(page.locator("h1")).to_contain_text("Pro")
    screenshot(page, "checkout")
    page.click("#submit")

    expect(page).to_have_url(f"{billing_server.url}/apps/{tenant.id}/billing")
    expect(page.locator(".flash-success")).to_have_text("Obrigado! Seu app agora está no Pro.")
    expect(page.locator("#plan-name")).to_have_text("Pro")
    expect(page.locator("#current-plan .badge-active")).to_have_text("Ativa")
    expect(page.locator("#card")).to_have_text("Visa •••• 4242")
    expect(page.locator("#renews-on")).to_be_visible()
    screenshot(page, "billing")
    row = subscription_of(billing_app, tenant.id)
    assert row.status == SubscriptionStatus.ACTIVE and row.plan.code == "pro"


def test_a_declined_card_shows_why_and_subscribes_nothing(page, billing_app, billing_server, owner, tenant, screenshot):
    sign_in_as(page, billing_server, owner)
    choose_plan(page, billing_server, tenant.id, "enterprise")
    checkout_url = page.url
    fill_card(page, "4000 0000 0000 0002")
    page.click("#submit")
    expect(page.locator("#error")).to_have_text("Seu cartão foi recusado.")  # the page is in the owner's locale
    assert page.url == checkout_url
    screenshot(page, "checkout-declined")
    assert count(billing_app, AppSubscription) == 0

    page.click("#cancel")
    expect(page).to_have_url(f"{billing_server.url}/apps/{tenant.id}/billing")
    expect(page.locator(".flash-info")).to_contain_text("Nada foi cobrado")
    expect(page.locator("#plan-name")).to_have_text("Gratuito")


def test_owner_replaces_the_card_through_checkout(page, billing_app, billing_server, owner, tenant, screenshot):
    subscribe(signed_in_client(billing_app, owner), tenant.id, "pro")
    sign_in_as(page, billing_server, owner)
    page.goto(f"{billing_server.url}/apps/{tenant.id}/billing")
    expect(page.locator("#card")).to_have_text("Visa •••• 4242")
    page.click("#update-card")
    fill_card(page, "5555 5555 5555 4444")
    screenshot(page, "checkout-card")
    page.click("#submit")

    expect(page).to_have_url(f"{billing_server.url}/apps/{tenant.id}/billing")
    expect(page.locator(".flash-success")).to_have_text(
        "Seu novo cartão foi salvo e será usado nos próximos pagamentos.")
    expect(page.locator("#card")).to_have_text("Mastercard •••• 4444")
    assert "5555 5555 5555 4444" not in page.content()
    assert subscription_of(billing_app, tenant.id).card_last4 == "4444"

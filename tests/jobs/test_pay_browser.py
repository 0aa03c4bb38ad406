"""In Chromium: during dunning the owner sees the banner, pays the open invoice with a new card, and dunning ends."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from billing.models import App, AppStatus
from jobs.dunning import run_now
from portal.extensions import db
from tests.flows.browser_steps import fill_card, sign_in_as
from tests.helpers.data import invoice_row
from tests.helpers.dunning import advance_to, day

pytestmark = pytest.mark.browser


def test_the_owner_pays_during_dunning_from_the_banner(page, billing_app, dunning, owner, billing_server,
                                                        screenshot):
    server = billing_server
    for number in (2, 3):  # the notice, then retry #1 fails
        advance_to(billing_app, day(dunning, number))
        run_now()
    sign_in_as(page, server, owner)
    page.goto(f"{server.url}/apps/{dunning.app_id}")
    banner = page.locator(".dunning-banner")
    expect(banner).to_contain_text("O pagamento da fatura")
    expect(banner).to_contain_text("R$\xa099,00")
    screenshot(page, "dunning-banner")

    banner.get_by_role("link", name="Pagar agora").click()
    expect(page).to_have_url(f"{server.url}/apps/{dunning.app_id}/pay")
    expect(page.locator(".dunning-attempts [data-attempt='1']")).to_contain_text("Recusada")
    screenshot(page, "dunning-pay")
    page.click("#pay-with-new-card")
    # The card-saving page says what will be charged, not only "save a card".
    expect(page.locator("#submit-message")).to_contain_text("R$\xa099,00")
    fill_card(page, "5555 5555 5555 4444")
    page.click("#submit")

    expect(page).to_have_url(f"{server.url}/apps/{dunning.app_id}/notices")
    expect(page.locator(".flash-success")).to_have_text(
        "Pagamento recebido, obrigado. Seu novo cartão será usado daqui em diante.")
    expect(page.locator(".dunning-banner")).to_have_count(0)
    expect(page.locator("[data-kind='dunning.recovered']")).to_have_count(1)
    screenshot(page, "dunning-notices")

    invoice = invoice_row(billing_app, dunning.invoice_id)
    assert (invoice.status, invoice.dunning_outcome) == ("paid", "paid")
    with billing_app.app_context():
        app = db.session.get(App, dunning.app_id)
        assert app.status == AppStatus.ACTIVE
        assert (app.current_subscription.status.value, app.current_subscription.card_last4) == ("active", "4444")

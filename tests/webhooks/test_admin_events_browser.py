"""The Stripe events page in Chromium: a failed event, its error and payload, and the replay button."""
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from billing.models import KernelPlan
from portal.extensions import db
from tests.helpers.browser import SCREENSHOTS, sign_in
from tests.helpers.data import PASSWORD
from tests.webhooks.helpers import event, post, subscription
from tests.webhooks.serving import ThreadedServer

pytestmark = pytest.mark.browser


def test_a_superadmin_finds_a_failed_event_and_replays_it(page, app, client, acme, superadmin):
    failed = event("customer.subscription.created", subscription(sub_id="sub_by_hand", price="price_by_hand"))
    post(client, failed)
    post(client, event("customer.subscription.created", subscription(customer="cus_stranger")))  # ignored
    with ThreadedServer(app) as server:
        sign_in(page, server.url, superadmin.email, PASSWORD)
        page.goto(f"{server.url}/admin/events")
        page.click("button[name=lang][value=pt_BR]")  # the kernel's superadmins read Portuguese
        expect(page.locator("h1")).to_have_text("Eventos da Stripe")
        row = page.locator(f"tr[data-event={failed['id']}]")
        expect(row).to_contain_text("price_by_hand")
        expect(page.locator("#event-counts [data-status=failed]")).to_have_text("1")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "stripe-events.png"), full_page=True)

        row.locator("a").click()
        expect(page.locator("#payload")).to_contain_text('"sub_by_hand"')
        expect(page.locator("#last-error")).to_contain_text("UnknownPrice")

        with app.app_context():  # the price made by hand in Stripe is added to the catalogue
            db.session.scalar(select(KernelPlan).where(KernelPlan.code == "pro")).stripe_price_id = "price_by_hand"
            db.session.commit()
        page.click("#replay")
        expect(page.locator(".flash-success")).to_be_visible()
        expect(page.locator("#event-facts")).to_contain_text("2")  # attempts
        expect(page.locator("#changes")).to_contain_text("subscription.created")
        expect(page.locator("#replay")).to_have_count(0)

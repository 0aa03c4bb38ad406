"""Invoices after a renewal, in Chromium: the sandbox's test clock renews the subscription and its webhooks
(signed, delivered to the running portal, processed by the webhook pipeline) bring the renewal invoice in."""
from datetime import timedelta

import pytest
import requests
from playwright.sync_api import expect
from sqlalchemy import select

from billing.models import KernelInvoice
from tests.helpers.clients import signed_in_client, subscribe
from tests.helpers.data import short_session, subscription_of
from tests.flows.browser_steps import sign_in_as

pytestmark = pytest.mark.browser


def deliver_webhooks_to(sandbox, billing_app, portal_url: str) -> None:
    """Point the sandbox's webhooks at the running portal, as the Stripe dashboard's endpoint would."""
    response = requests.post(f"{sandbox.url}/v1/webhook_endpoints", timeout=10,
                             headers={"Authorization": "Bearer sk_test_sandbox"},
                             data={"url": f"{portal_url}/webhooks/kernel/stripe", "enabled_events[]": "*"})
    response.raise_for_status()
    billing_app.config["STRIPE_KERNEL_WEBHOOK_SECRETS"] = [response.json()["secret"]]


def test_the_renewal_invoice_is_listed_after_a_month(page, billing_app, billing_server, sandbox, owner, tenant,
                                                     screenshot):
    deliver_webhooks_to(sandbox, billing_app, billing_server.url)
    subscribe(signed_in_client(billing_app, owner), tenant.id, "pro")
    renews_at = subscription_of(billing_app, tenant.id).current_period_end
    sandbox.advance(to=int((renews_at + timedelta(hours=2)).timestamp()))
    sandbox.wait_for_deliveries(timeout=30)
    failed = [d for d in sandbox.deliveries() if d["outcome"] not in ("delivered", None) or d["status"] != 200]
    assert not failed, failed[:3]

    with short_session(billing_app) as session:
        renewal = session.scalar(select(KernelInvoice).where(KernelInvoice.billing_reason == "subscription_cycle"))
        assert renewal is not None and (renewal.status, renewal.amount_paid) == ("paid", 9900)
        renewal_id, renewal_number = renewal.id, renewal.number
        renewal_pdf, renewal_hosted = renewal.invoice_pdf, renewal.hosted_invoice_url
        assert renewal_pdf and renewal_hosted
    assert subscription_of(billing_app, tenant.id).current_period_start == renews_at

    sign_in_as(page, billing_server, owner)
    page.goto(f"{billing_server.url}/apps/{tenant.id}/invoices")
    rows = page.locator("#invoices tbody tr[data-invoice]")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-reason", "subscription_cycle")
    expect(rows.first).to_contain_text(renewal_number)
    expect(rows.first).to_contain_text("R$\xa099,00")
    expect(rows.first).to_contain_text("Paga")
    expect(rows.nth(1)).to_have_attribute("data-reason", "subscription_create")
    screenshot(page, "invoices")

    rows.first.locator("a.strong").click()
    expect(page).to_have_url(f"{billing_server.url}/apps/{tenant.id}/invoices/{renewal_id}")
    expect(page.locator("#amount-due")).to_have_text("R$\xa099,00")
    expect(page.locator("#invoice-lines")).to_contain_text("R$\xa099,00")
    expect(page.locator("#invoice-pdf")).to_have_attribute("href", renewal_pdf)
    expect(page.locator("#hosted-invoice")).to_have_attribute("href", renewal_hosted)
    screenshot(page, "invoice-detail")

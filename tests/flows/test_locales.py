"""Finding 3 of issue 16: the owner's language reaches Stripe, and invoice lines read in the reader's language.

The customer's ``preferred_locales`` (Stripe's invoices, receipts and e-mails) carry the owners' languages,
set when the customer is made and again when an owner's language changes; every Checkout session carries
the ``locale`` of whoever opens it. Checked in the sandbox, through the real SDK.
"""
from __future__ import annotations

import re

import stripe

from billing.models import App
from tests.helpers.clients import AuthActions, local_path, pay_hosted_checkout
from tests.helpers.data import audit_actions, customer_of, short_session
from tests.helpers.sandbox import make_client


def browser_in(app, language: str):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
    return client


def checkout(client, app_id: int, path: str, data: dict) -> str:
    response = client.post(f"/apps/{app_id}/{path}", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"]


def session_locale(sandbox, url: str) -> str | None:
    session_id = re.search(r"(cs_[A-Za-z0-9_]+)", url).group(1)
    return make_client(sandbox.url).v1.checkout.sessions.retrieve(session_id)["locale"]


def customer(sandbox, customer_id: str) -> stripe.Customer:
    return make_client(sandbox.url).v1.customers.retrieve(customer_id)


def test_the_owners_language_reaches_the_customer_and_every_checkout(billing_app, owner, tenant, sandbox):
    browser = browser_in(billing_app, "pt-BR,pt;q=0.9")
    assert AuthActions(browser).login(owner.email).status_code == 302
    url = checkout(browser, tenant.id, "billing/checkout", {"plan": "pro", "attempt": "attempt-0001"})
    assert session_locale(sandbox, url) == "pt-BR"
    browser.get(local_path(pay_hosted_checkout(url).headers["Location"]))
    customer_id = customer_of(billing_app, tenant.id)
    assert customer(sandbox, customer_id)["preferred_locales"] == ["pt-BR"]

    browser.post("/language", data={"lang": "en", "next": "/dashboard"})
    assert customer(sandbox, customer_id)["preferred_locales"] == ["en"]
    assert "customer.preferred_locales_set" in audit_actions(billing_app, tenant.id)
    card = checkout(browser, tenant.id, "billing/payment-method", {"attempt": "card-0001"})
    assert session_locale(sandbox, card) == "en"

    browser.post("/language", data={"lang": "pt_BR", "next": "/dashboard"})  # and back: a new change, not a replay
    assert customer(sandbox, customer_id)["preferred_locales"] == ["pt-BR"]


def test_every_owners_language_is_preferred_the_first_owners_first(billing_app, owner, other_owner, tenant, sandbox):
    from billing.customers import preferred_locales

    with short_session(billing_app) as session:
        app = session.get(App, tenant.id)
        app.owners[0].locale = "en"
        assert preferred_locales(app) == ["en"]
        app.owners.append(session.get(type(app.owners[0]), other_owner.id))
        other = app.owners[-1]
        other.locale = "pt_BR"
        assert preferred_locales(app) == (["en", "pt-BR"] if owner.id < other_owner.id else ["pt-BR", "en"])
        app.owners[0].locale = other.locale = None
        assert preferred_locales(app) == ["pt-BR"]  # nobody has signed in yet: the portal's default
        session.rollback()


def upgraded_halfway_through_a_month(billing_app, owner, tenant, sandbox, language: str):
    """An owner browsing in ``language`` who subscribed to Pro and upgraded to Enterprise halfway through a thirty-day
    month (proration lines on the invoice); returns their signed-in client."""
    from tests.flows.test_plan_changes import halfway_through_the_period, preview_form, start_of_a_thirty_day_month
    from tests.helpers.clients import subscribe

    client = browser_in(billing_app, language)
    AuthActions(client).login(owner.email)
    start_of_a_thirty_day_month(billing_app, sandbox)
    subscribe(client, tenant.id, "pro")
    halfway_through_the_period(billing_app, sandbox, tenant.id)
    _, form = preview_form(client, tenant.id)
    client.post(f"/apps/{tenant.id}/billing/upgrade", data=form)
    return client


def test_invoice_lines_read_in_the_readers_language(billing_app, owner, tenant, sandbox):
    english = upgraded_halfway_through_a_month(billing_app, owner, tenant, sandbox, "en")

    listing = english.get(f"/apps/{tenant.id}/invoices").get_data(as_text=True)
    ids = sorted(set(re.findall(rf"/apps/{tenant.id}/invoices/(\d+)", listing)), key=int)
    pages = {"en": "".join(english.get(f"/apps/{tenant.id}/invoices/{i}").get_data(as_text=True) for i in ids)}
    english.post("/language", data={"lang": "pt_BR", "next": "/dashboard"})
    pt = "".join(english.get(f"/apps/{tenant.id}/invoices/{i}").get_data(as_text=True) for i in ids)
    assert "Pro plan, R$99.00 a month" in pages["en"]
    assert "Unused time on Pro after" in pages["en"] and "Remaining time on Enterprise after" in pages["en"]
    assert "R$ 99,00" not in pages["en"].replace("\xa0", " ")  # one money format in English
    assert "Tempo não utilizado do Pro após" in pt and "Tempo restante do Enterprise após" in pt
    assert "Plano Pro, R$\xa099,00 por mês" in pt and "Unused time" not in pt


def test_stripe_writes_a_pt_br_customer_s_lines_in_portuguese_and_our_pages_still_say_them_in_the_reader_s(
        billing_app, owner, tenant, sandbox):
    """The sandbox, like Stripe, writes proration lines in the customer's preferred language (pt-BR here); our
    invoice page says our plans' lines itself, so an owner reading in English reads them in English."""
    brazilian = upgraded_halfway_through_a_month(billing_app, owner, tenant, sandbox, "pt-BR")

    customer_id = customer_of(billing_app, tenant.id)
    assert customer(sandbox, customer_id)["preferred_locales"] == ["pt-BR"]
    written = [line.description for invoice in make_client(sandbox.url).v1.invoices.list({"customer": customer_id})
               for line in invoice.lines.data]
    assert any(text.startswith("Tempo não utilizado de Kernel Pro após") for text in written), written
    assert any(text.startswith("Tempo restante de Kernel Enterprise após") for text in written), written

    listing = brazilian.get(f"/apps/{tenant.id}/invoices").get_data(as_text=True)
    ids = sorted(set(re.findall(rf"/apps/{tenant.id}/invoices/(\d+)", listing)), key=int)
    brazilian.post("/language", data={"lang": "en", "next": "/dashboard"})
    english = "".join(brazilian.get(f"/apps/{tenant.id}/invoices/{i}").get_data(as_text=True) for i in ids)
    assert "Unused time on Pro after" in english and "Remaining time on Enterprise after" in english
    assert "Tempo" not in english

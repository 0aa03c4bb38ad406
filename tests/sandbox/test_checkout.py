"""Checkout Sessions and the hosted page, driven with plain HTTP like a browser would."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import stripe

from . import helpers

GOOD = "4242 4242 4242 4242"


def form(number=GOOD, expiry="12 / 34", cvc="123", name="Ana Souza", email=None):
    data = {"cardNumber": number, "cardExpiry": expiry, "cardCvc": cvc, "billingName": name}
    if email is not None:
        data["email"] = email
    return data


@pytest.fixture
def pro(stripe_client):
    return helpers.price(stripe_client, 9900, "Pro")


def subscription_session(client, price_id, **extra):
    params = {"mode": "subscription", "line_items": [{"price": price_id, "quantity": 1}],
              "success_url": "https://portal.test/billing/done?session={CHECKOUT_SESSION_ID}",
              "cancel_url": "https://portal.test/billing", "client_reference_id": "app-3",
              "metadata": {"app_id": "3"}}
    params.update(extra)
    return client.v1.checkout.sessions.create(params)


def submit(session, data):
    return requests.post(session.url, data=data, allow_redirects=False, timeout=30)


def test_session_shape_and_page(stripe_client, sandbox, pro):
    cus = stripe_client.v1.customers.create({"email": "owner@example.com"})
    session = subscription_session(stripe_client, pro.id, customer=cus.id)
    assert session.id.startswith("cs_test_") and session.status == "open"
    assert session.payment_status == "unpaid" and session.mode == "subscription"
    assert session.url == f"{sandbox.url}/checkout/{session.id}"
    page = requests.get(session.url, timeout=10)
    assert page.status_code == 200
    text = page.text
    assert "Pro" in text and "R$ 99,00 / month" in text
    for field in ("cardNumber", "cardExpiry", "cardCvc", "billingName", "email"):
        assert f'name="{field}"' in text and f'id="{field}"' in text
    assert 'id="submit"' in text and 'href="https://portal.test/billing"' in text
    assert 'value="owner@example.com"' in text


def test_successful_subscription_checkout(stripe_client, pro):
    session = subscription_session(stripe_client, pro.id, customer_email="new@example.com",
                                   subscription_data={"metadata": {"app_id": "3"}})
    response = submit(session, form())
    assert response.status_code == 303
    target = urlparse(response.headers["Location"])
    assert target.netloc == "portal.test" and parse_qs(target.query)["session"] == [session.id]
    done = stripe_client.v1.checkout.sessions.retrieve(session.id, {"expand": ["subscription", "invoice"]})
    assert done.status == "complete" and done.payment_status == "paid"
    assert done.subscription.status == "active" and done.subscription.metadata["app_id"] == "3"
    assert done.invoice.status == "paid" and done.invoice.billing_reason == "subscription_create"
    assert done.invoice.amount_paid == 9900
    cus = stripe_client.v1.customers.retrieve(done.customer)
    assert cus.email == "new@example.com"
    assert cus.invoice_settings.default_payment_method == done.subscription.default_payment_method
    completed = helpers.events(stripe_client, "checkout.session.completed")
    assert [e["data"]["object"]["id"] for e in completed] == [session.id]
    assert completed[0]["data"]["object"]["client_reference_id"] == "app-3"


@pytest.mark.parametrize("number,message", [
    ("4000 0000 0000 0002", "Your card was declined."),
    ("4000 0000 0000 9995", "Your card has insufficient funds."),
    ("4000 0000 0000 0341", "Your card was declined."),
])
def test_declines_rerender_and_create_nothing(stripe_client, pro, number, message):
    session = subscription_session(stripe_client, pro.id, customer_email="d@example.com")
    response = submit(session, form(number=number))
    assert response.status_code == 402 and message in response.text
    assert number.replace(" ", "") not in response.text  # the number is not echoed back
    assert stripe_client.v1.subscriptions.list({"status": "all"}).data == []
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert stripe_client.v1.invoices.list().data == []


@pytest.mark.parametrize("field,value,error", [
    ("cardNumber", "4242 4242 4242 4241", "Your card number is invalid."),
    ("cardExpiry", "01 / 20", "Your card's expiration year is in the past."),
    ("cardCvc", "12", "Your card's security code is incomplete."),
    ("email", "not-an-email", "Your email address is invalid."),
])
def test_field_validation(stripe_client, pro, field, value, error):
    session = subscription_session(stripe_client, pro.id)
    data = form(email="ok@example.com")
    data[field] = value
    response = submit(session, data)
    assert response.status_code == 400 and error in html.unescape(response.text)
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_double_submit_charges_once(stripe_client, pro):
    session = subscription_session(stripe_client, pro.id, customer_email="twice@example.com")
    assert submit(session, form()).status_code == 303
    again = submit(session, form())
    assert again.status_code == 409 and "This session is already complete" in again.text
    assert len(stripe_client.v1.charges.list().data) == 1
    assert len(stripe_client.v1.subscriptions.list().data) == 1


def test_trial_checkout(stripe_client, pro):
    session = subscription_session(stripe_client, pro.id, customer_email="t@example.com",
                                   subscription_data={"trial_period_days": 14})
    assert "14 days free" in requests.get(session.url, timeout=10).text
    assert submit(session, form()).status_code == 303
    done = stripe_client.v1.checkout.sessions.retrieve(session.id, {"expand": ["subscription", "invoice"]})
    assert done.subscription.status == "trialing" and done.subscription.trial_end
    assert done.invoice.amount_due == 0 and done.invoice.status == "paid"
    assert stripe_client.v1.charges.list().data == []


def test_three_d_secure_complete_and_fail(stripe_client, sandbox, pro):
    on_clock = helpers.customer(stripe_client, pm=None, email="s@example.com")  # so the renewal below can come
    session = subscription_session(stripe_client, pro.id, customer=on_clock.id)
    challenge = submit(session, form(number="4000 0025 0000 3155"))
    assert challenge.status_code == 200 and "3D Secure" in challenge.text
    action = re.search(r'action="([^"]+)"', challenge.text).group(1)
    failed = requests.post(session.url.rsplit("/checkout/", 1)[0] + action, data={"action": "fail"},
                           allow_redirects=False, timeout=10)
    assert failed.status_code == 402 and "unable to authenticate" in failed.text
    assert stripe_client.v1.subscriptions.list({"status": "all"}).data == []
    submit(session, form(number="4000 0025 0000 3155"))
    done = requests.post(session.url.rsplit("/checkout/", 1)[0] + action, data={"action": "complete"},
                         allow_redirects=False, timeout=10)
    assert done.status_code == 303
    sub = stripe_client.v1.subscriptions.list().data[0]
    assert sub.status == "active"
    # Authenticated once while saving the card: the off-session renewal goes through.
    sandbox.advance(to=helpers.period(sub)[1] + helpers.AFTER_RENEWAL)
    renewal = stripe_client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]}).latest_invoice
    assert renewal.billing_reason == "subscription_cycle" and renewal.status == "paid"


def test_setup_mode(stripe_client):
    cus = helpers.customer(stripe_client, pm="pm_card_visa")
    default_before = cus.invoice_settings.default_payment_method
    session = stripe_client.v1.checkout.sessions.create({
        "mode": "setup", "customer": cus.id, "currency": "brl", "success_url": "https://portal.test/ok",
        "setup_intent_data": {"metadata": {"purpose": "card-update"}}})
    assert session.payment_status == "no_payment_required"
    assert "Save card" in requests.get(session.url, timeout=10).text
    assert submit(session, form(number="5555 5555 5555 4444")).status_code == 303
    done = stripe_client.v1.checkout.sessions.retrieve(session.id, {"expand": ["setup_intent"]})
    assert done.status == "complete"
    seti = done.setup_intent
    assert seti.status == "succeeded" and seti.metadata["purpose"] == "card-update"
    pm = stripe_client.v1.payment_methods.retrieve(seti.payment_method)
    assert pm.customer == cus.id and pm.card.brand == "mastercard"
    # Setup mode does not change defaults: the portal does that.
    assert stripe_client.v1.customers.retrieve(cus.id).invoice_settings.default_payment_method == default_before
    assert "setup_intent.succeeded" in helpers.event_types(stripe_client)


def test_payment_mode(stripe_client):
    product = stripe_client.v1.products.create({"name": "Credits"})
    once = stripe_client.v1.prices.create({"product": product.id, "unit_amount": 2500, "currency": "brl"})
    session = stripe_client.v1.checkout.sessions.create({
        "mode": "payment", "line_items": [{"price": once.id, "quantity": 2}], "success_url": "https://p.test/ok"})
    assert session.amount_total == 5000
    assert submit(session, form(email="buyer@example.com")).status_code == 303
    done = stripe_client.v1.checkout.sessions.retrieve(session.id, {"expand": ["payment_intent"]})
    assert done.payment_intent.status == "succeeded" and done.payment_intent.amount_received == 5000


def test_expire_and_expired_page(stripe_client, sandbox, pro):
    session = subscription_session(stripe_client, pro.id)
    expired = stripe_client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired"
    assert "expired" in requests.get(f"{sandbox.url}/checkout/{session.id}", timeout=10).text
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.checkout.sessions.expire(session.id)
    # A session of a customer on a test clock expires on the clock's time.
    later = subscription_session(stripe_client, pro.id, customer=helpers.customer(stripe_client, pm=None).id)
    sandbox.advance(seconds=25 * 3600)
    assert stripe_client.v1.checkout.sessions.retrieve(later.id).status == "expired"
    assert len(helpers.events(stripe_client, "checkout.session.expired")) == 2


def test_list_sessions(stripe_client, pro):
    first = subscription_session(stripe_client, pro.id)
    second = subscription_session(stripe_client, pro.id)
    assert [s.id for s in stripe_client.v1.checkout.sessions.list().data] == [second.id, first.id]
    items = stripe_client.v1.checkout.sessions.line_items.list(first.id)
    assert items.data[0].price.id == pro.id and items.data[0].amount_total == 9900


def test_the_hosted_page_speaks_the_session_s_locale(stripe_client, pro):
    """Stripe writes the Checkout page in the session's ``locale``: pt-BR when asked, English otherwise."""
    cus = stripe_client.v1.customers.create({"email": "dona@example.com"})
    page = requests.get(subscription_session(stripe_client, pro.id, customer=cus.id, locale="pt-BR").url,
                        timeout=10).text
    assert '<html lang="pt-BR">' in page
    for words in ("Assinar Pro", "R$ 99,00 / mês", "Total devido hoje", "Informações do cartão",
                  "Nome do titular do cartão", "Pagar e assinar", "Cancelar", "Voltar"):
        assert words in page, words
    assert "Card information" not in page and "Subscribe to" not in page and "/ month" not in page

    english = requests.get(subscription_session(stripe_client, pro.id, customer=cus.id, locale="en").url,
                           timeout=10).text
    assert '<html lang="en">' in english and "Subscribe to Pro" in english and "Card information" in english
    unsupported = requests.get(subscription_session(stripe_client, pro.id, customer=cus.id, locale="de").url,
                               timeout=10).text
    assert "Subscribe to Pro" in unsupported


def test_auto_follows_the_browser_s_language(stripe_client, pro):
    session = subscription_session(stripe_client, pro.id, customer_email="a@example.com", locale="auto")
    brazilian = requests.get(session.url, headers={"Accept-Language": "pt-BR,pt;q=0.9,en;q=0.8"}, timeout=10).text
    assert "Assinar Pro" in brazilian
    assert "Subscribe to Pro" in requests.get(session.url, headers={"Accept-Language": "fr"}, timeout=10).text


def test_errors_on_a_pt_br_page_are_in_portuguese(stripe_client, pro):
    session = subscription_session(stripe_client, pro.id, customer_email="d@example.com", locale="pt-BR")
    declined = submit(session, form(number="4000 0000 0000 9995"))
    assert declined.status_code == 402 and "Seu cartão não tem saldo suficiente." in declined.text
    assert "Assinar Pro" in declined.text
    data = form(cvc="12")
    invalid = submit(session, data)
    assert invalid.status_code == 400
    assert "O código de segurança do seu cartão está incompleto." in html.unescape(invalid.text)
    challenge = submit(session, form(number="4000 0025 0000 3155"))
    assert "Autenticação 3D Secure" in challenge.text and "Concluir autenticação" in challenge.text
    action = re.search(r'action="([^"]+)"', challenge.text).group(1)
    failed = requests.post(session.url.rsplit("/checkout/", 1)[0] + action, data={"action": "fail"},
                           allow_redirects=False, timeout=10)
    assert failed.status_code == 402 and "Não foi possível autenticar sua forma de pagamento" in failed.text


def test_setup_and_payment_pages_in_portuguese(stripe_client):
    cus = stripe_client.v1.customers.create({"email": "s@example.com"})
    setup = stripe_client.v1.checkout.sessions.create({
        "mode": "setup", "customer": cus.id, "currency": "brl", "locale": "pt-BR",
        "success_url": "https://portal.test/ok", "cancel_url": "https://portal.test/no"})
    page = requests.get(setup.url, timeout=10).text
    assert "Salvar um cartão para pagamentos futuros" in page and "Salvar cartão" in page

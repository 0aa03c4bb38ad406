"""Invoice operations, the hosted invoice page and the PDF."""

from __future__ import annotations

import re

import pytest
import requests
import stripe

from . import helpers


@pytest.fixture
def open_invoice(stripe_client, sandbox):
    """A renewal invoice left open by a failing card."""
    pro = helpers.price(stripe_client, 9900, "Pro")
    cus = helpers.customer(stripe_client)
    sub = helpers.subscribe(stripe_client, cus.id, pro.id)
    failing = stripe_client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": cus.id})
    stripe_client.v1.subscriptions.update(sub.id, {"default_payment_method": failing.id})
    sandbox.advance(to=helpers.period(sub)[1] + helpers.AFTER_RENEWAL)
    inv = stripe_client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]}).latest_invoice
    assert inv.status == "open"
    return inv


def test_paying_a_paid_invoice_is_refused(stripe_client, open_invoice):
    stripe_client.v1.invoices.pay(open_invoice.id, {"payment_method": "pm_card_visa"})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe_client.v1.invoices.pay(open_invoice.id)
    assert raised.value.code == "invoice_already_paid"


def test_failed_pay_records_the_attempt(stripe_client, open_invoice):
    with pytest.raises(stripe.CardError) as raised:
        stripe_client.v1.invoices.pay(open_invoice.id)
    assert raised.value.error.decline_code == "generic_decline"
    inv = stripe_client.v1.invoices.retrieve(open_invoice.id)
    assert inv.status == "open" and inv.attempt_count == open_invoice.attempt_count + 1
    types = helpers.event_types(stripe_client)
    assert types[-2:] == ["payment_intent.payment_failed", "invoice.payment_failed"]


def test_void(stripe_client, open_invoice):
    voided = stripe_client.v1.invoices.void_invoice(open_invoice.id)
    assert voided.status == "void" and voided.status_transitions.voided_at
    pi = stripe_client.v1.payment_intents.retrieve(voided.payments.data[0].payment.payment_intent)
    assert pi.status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoices.pay(open_invoice.id)
    assert helpers.event_types(stripe_client)[-1] == "invoice.voided"


def test_mark_uncollectible_then_pay(stripe_client, open_invoice):
    marked = stripe_client.v1.invoices.mark_uncollectible(open_invoice.id)
    assert marked.status == "uncollectible" and marked.status_transitions.marked_uncollectible_at
    paid = stripe_client.v1.invoices.pay(open_invoice.id, {"payment_method": "pm_card_mastercard"})
    assert paid.status == "paid"


def test_list_filters_and_lines(stripe_client, open_invoice):
    sub_id = open_invoice.parent.subscription_details.subscription
    assert [i.id for i in stripe_client.v1.invoices.list({"status": "open"}).data] == [open_invoice.id]
    assert len(stripe_client.v1.invoices.list({"subscription": sub_id}).data) == 2
    assert len(stripe_client.v1.invoices.list({"customer": open_invoice.customer, "status": "paid"}).data) == 1
    lines = stripe_client.v1.invoices.line_items.list(open_invoice.id)
    assert [line.amount for line in lines.data] == [9900]


def pay_on_page(invoice, card_number: str) -> requests.Response:
    """The hosted invoice page's card form, sent as a customer fills it in."""
    return requests.post(invoice.hosted_invoice_url, data={
        "cardNumber": card_number, "cardExpiry": "12 / 34", "cardCvc": "123", "billingName": "Ana"}, timeout=10)


def test_hosted_page_and_pdf(stripe_client, open_invoice):
    assert open_invoice.hosted_invoice_url.endswith(f"/invoice/{open_invoice.id}")
    page = requests.get(open_invoice.hosted_invoice_url, timeout=10)
    assert page.status_code == 200 and "R$ 99,00" in page.text and open_invoice.number in page.text
    assert 'id="cardNumber"' in page.text
    declined = pay_on_page(open_invoice, "4000 0000 0000 0002")
    assert declined.status_code == 402 and "Your card was declined." in declined.text
    paid = pay_on_page(open_invoice, "4242 4242 4242 4242")
    assert paid.status_code == 200 and "has been paid" in paid.text
    assert stripe_client.v1.invoices.retrieve(open_invoice.id).status == "paid"
    pdf = requests.get(open_invoice.invoice_pdf, timeout=10)
    assert pdf.headers["Content-Type"] == "application/pdf"
    body = pdf.content
    assert body.startswith(b"%PDF-1.4") and body.rstrip().endswith(b"%%EOF")
    assert open_invoice.number.encode() in body and b"R$ 99,00" in body
    # The cross-reference table points at each object, as a PDF reader needs.
    start = int(re.search(rb"startxref\n(\d+)", body).group(1))
    assert body[start:start + 4] == b"xref"
    for number, offset in enumerate(re.findall(rb"(\d{10}) 00000 n", body), start=1):
        assert body[int(offset):].startswith(b"%d 0 obj" % number)


def test_finalize_draft_is_refused_twice(stripe_client, open_invoice):
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoices.finalize_invoice(open_invoice.id)


def test_one_off_invoice(stripe_client):
    cus = helpers.customer(stripe_client)
    inv = stripe_client.v1.invoices.create({"customer": cus.id, "currency": "brl", "metadata": {"kind": "setup-fee"}})
    assert inv.status == "draft" and inv.billing_reason == "manual" and inv.amount_due == 0
    stripe_client.v1.invoice_items.create({"customer": cus.id, "invoice": inv.id, "amount": 15000,
                                           "currency": "brl", "description": "Setup fee"})
    stripe_client.v1.invoice_items.create({"customer": cus.id, "invoice": inv.id, "amount": 2500,
                                           "currency": "brl", "description": "Extra seat"})
    draft = stripe_client.v1.invoices.retrieve(inv.id)
    assert draft.amount_due == 17500 and [line.description for line in draft.lines.data] == ["Setup fee", "Extra seat"]
    assert draft.lines.data[0].parent.type == "invoice_item_details"
    finalized = stripe_client.v1.invoices.finalize_invoice(inv.id)
    assert finalized.status == "open" and finalized.number
    paid = stripe_client.v1.invoices.pay(inv.id)
    assert paid.status == "paid" and paid.amount_paid == 17500
    draft_to_delete = stripe_client.v1.invoices.create({"customer": cus.id, "currency": "brl"})
    assert stripe_client.v1.invoices.delete(draft_to_delete.id).deleted is True


def test_the_hosted_invoice_page_speaks_the_customer_s_preferred_language(stripe_client, open_invoice):
    """Stripe writes a hosted invoice in its customer's ``preferred_locales``; English for the others."""
    stripe_client.v1.customers.update(open_invoice.customer, {"preferred_locales": ["pt-BR"]})
    page = requests.get(open_invoice.hosted_invoice_url, timeout=10).text
    assert '<html lang="pt-BR">' in page
    for words in (f"Fatura {open_invoice.number}", "em aberto", "Emitida em", "Valor devido", "Valor pago",
                  "Baixar PDF", "Informações do cartão", "Pagar R$ 99,00"):
        assert words in page, words
    assert "Amount due" not in page and "Card information" not in page
    declined = pay_on_page(open_invoice, "4000 0000 0000 0002")
    assert declined.status_code == 402 and "Seu cartão foi recusado." in declined.text
    paid = pay_on_page(open_invoice, "4242 4242 4242 4242")
    assert paid.status_code == 200 and "Pagamento recebido. Obrigado!" in paid.text
    assert "Esta fatura foi paga." in paid.text and "Paga em" in paid.text

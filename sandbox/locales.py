"""The languages the sandbox writes in, as Stripe does: English, and Brazilian Portuguese when asked for it.

Stripe writes the hosted Checkout page in the session's ``locale`` (``auto``: the
browser's language), and the text it puts on a customer's invoices (proration
lines, trial lines) in the first of the customer's ``preferred_locales`` it
supports. The sandbox supports ``pt-BR`` and falls back to English for everything
else, as Stripe falls back to the account's language. Stripe's own pt-BR wording
is not public for every string; where it was not known a faithful Portuguese
rendering was chosen (README.md says which).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Optional

from babel.dates import format_date

ENGLISH, PORTUGUESE = "en", "pt-BR"
SUPPORTED = (ENGLISH, PORTUGUESE)

# key -> (English, Brazilian Portuguese). Placeholders are str.format fields.
TEXTS: dict[str, tuple[str, str]] = {
    # the hosted Checkout page
    "banner": ("Sandbox · test mode · no real money moves", "Sandbox · modo de teste · nenhum dinheiro real é movido"),
    "back": ("Back", "Voltar"),
    "subscribe_to": ("Subscribe to {name}", "Assinar {name}"),
    "pay": ("Pay", "Pagar"),
    "pay_amount": ("Pay {amount}", "Pagar {amount}"),
    "save_card": ("Save card", "Salvar cartão"),
    "save_card_headline": ("Save a card for future payments", "Salvar um cartão para pagamentos futuros"),
    "pay_and_subscribe": ("Pay and subscribe", "Pagar e assinar"),
    "start_trial": ("Start trial", "Iniciar avaliação"),
    "total_due_today": ("Total due today", "Total devido hoje"),
    "total_due": ("Total due", "Total devido"),
    "days_free": ("{days} days free", "{days} dias grátis"),
    "free_trial": ("Free trial", "Avaliação gratuita"),
    "trial_until": ("Free trial until {date}, then {price}", "Avaliação gratuita até {date}, depois {price}"),
    "then": ("Then {price}", "Depois {price}"),
    "already_complete": ("This session is already complete.", "Esta sessão já foi concluída."),
    "continue": ("Continue", "Continuar"),
    "expired": ("This checkout session has expired.", "Esta sessão de checkout expirou."),
    "return_to_merchant": ("Return to the merchant", "Voltar para o vendedor"),
    "email": ("Email", "E-mail"),
    "card_information": ("Card information", "Informações do cartão"),
    "expiry": ("Expiry", "Validade"),
    "cardholder_name": ("Cardholder name", "Nome do titular do cartão"),
    "full_name_on_card": ("Full name on card", "Nome completo no cartão"),
    "cancel": ("Cancel", "Cancelar"),
    "test_cards": ("Test cards: 4242 4242 4242 4242 succeeds · 4000 0000 0000 0002 is declined · "
                   "4000 0025 0000 3155 asks for 3D Secure.",
                   "Cartões de teste: 4242 4242 4242 4242 é aprovado · 4000 0000 0000 0002 é recusado · "
                   "4000 0025 0000 3155 pede 3D Secure."),
    "done": ("Thanks! This checkout is complete.", "Obrigado! Este checkout foi concluído."),
    "done_title": ("Done", "Concluído"),
    "threeds_title": ("3D Secure authentication", "Autenticação 3D Secure"),
    "threeds_ask": ("Your bank asks you to confirm this payment with {brand} •••• {last4}.",
                    "Seu banco pede que você confirme este pagamento com o {brand} •••• {last4}."),
    "threeds_complete": ("Complete authentication", "Concluir autenticação"),
    "threeds_fail": ("Fail authentication", "Falhar autenticação"),
    # the card form's field errors
    "email_invalid": ("Your email address is invalid.", "Seu endereço de e-mail é inválido."),
    "email_missing": ("Enter your email address.", "Informe seu endereço de e-mail."),
    "number_incomplete": ("Your card number is incomplete.", "O número do seu cartão está incompleto."),
    "number_invalid": ("Your card number is invalid.", "O número do seu cartão é inválido."),
    "expiry_incomplete": ("Your card's expiration date is incomplete.",
                          "A data de validade do seu cartão está incompleta."),
    "expiry_invalid": ("Your card's expiration date is invalid.", "A data de validade do seu cartão é inválida."),
    "expiry_past": ("Your card's expiration year is in the past.", "O ano de validade do seu cartão já passou."),
    "cvc_incomplete": ("Your card's security code is incomplete.",
                       "O código de segurança do seu cartão está incompleto."),
    "name_missing": ("Enter the name on your card.", "Informe o nome impresso no cartão."),
    # card errors, by Stripe's code (or decline code), as Checkout shows them
    "card_declined": ("Your card was declined.", "Seu cartão foi recusado."),
    "insufficient_funds": ("Your card has insufficient funds.", "Seu cartão não tem saldo suficiente."),
    "expired_card": ("Your card has expired.", "Seu cartão expirou."),
    "incorrect_number": ("Your card number is incorrect.", "O número do seu cartão está incorreto."),
    "invalid_cvc": ("Your card's security code is invalid.", "O código de segurança do seu cartão é inválido."),
    "authentication_failed": (
        "We are unable to authenticate your payment method. Please choose a different payment method and try "
        "again.",
        "Não foi possível autenticar sua forma de pagamento. Escolha outra forma de pagamento e tente novamente."),
    # the hosted invoice page
    "invoice": ("Invoice {number}", "Fatura {number}"),
    "draft_number": ("(draft)", "(rascunho)"),
    "status_draft": ("draft", "rascunho"),
    "status_open": ("open", "em aberto"),
    "status_paid": ("paid", "paga"),
    "status_void": ("void", "anulada"),
    "status_uncollectible": ("uncollectible", "incobrável"),
    "paid_on": ("Paid {date}", "Paga em {date}"),
    "issued_on": ("Issued {date}", "Emitida em {date}"),
    "billed_to": ("billed to {name}", "cobrada de {name}"),
    "subtotal": ("Subtotal", "Subtotal"),
    "applied_balance": ("Applied balance", "Saldo aplicado"),
    "amount_due": ("Amount due", "Valor devido"),
    "amount_paid": ("Amount paid", "Valor pago"),
    "download_pdf": ("Download PDF", "Baixar PDF"),
    "invoice_paid": ("This invoice has been paid.", "Esta fatura foi paga."),
    "invoice_void": ("This invoice has been voided.", "Esta fatura foi anulada."),
    "invoice_draft": ("This invoice is a draft and cannot be paid yet.",
                      "Esta fatura é um rascunho e ainda não pode ser paga."),
    "payment_received": ("Payment received. Thank you!", "Pagamento recebido. Obrigado!"),
    # lines Stripe writes on invoices
    "unused_time": ("Unused time on {name} after {date}", "Tempo não utilizado de {name} após {date}"),
    "remaining_time": ("Remaining time on {name} after {date}", "Tempo restante de {name} após {date}"),
    "trial_period": ("Trial period for {name}", "Período de avaliação de {name}"),
    "period_line": ("{quantity} × {name} (at {price})", "{quantity} × {name} (a {price})"),
    # a recurring price
    "per_interval": ("{amount} / {interval}", "{amount} / {interval}"),
    "every_intervals": ("{amount} every {count} {interval}s", "{amount} a cada {count} {interval}"),
}
INTERVALS_PT = {"day": ("dia", "dias"), "week": ("semana", "semanas"), "month": ("mês", "meses"),
                "year": ("ano", "anos")}


def text(key: str, locale: str = ENGLISH, **fields: Any) -> str:
    english, portuguese = TEXTS[key]
    return (portuguese if locale == PORTUGUESE else english).format(**fields)


def _supported(tag: Optional[str]) -> Optional[str]:
    tag = (tag or "").strip().lower().replace("_", "-")
    if tag == "pt-br":
        return PORTUGUESE
    if tag == "en" or tag.startswith("en-"):
        return ENGLISH
    return None


def checkout_locale(session_locale: Optional[str], accept_languages: Iterable[str] = ()) -> str:
    """The language of a Checkout page: the session's ``locale``; with ``auto``, the browser's first supported."""
    if (session_locale or "").lower() == "auto":
        return next(filter(None, map(_supported, accept_languages)), ENGLISH)
    return _supported(session_locale) or ENGLISH


def customer_locale(customer: Optional[dict[str, Any]]) -> str:
    """The language Stripe writes a customer's invoices in: the first of its ``preferred_locales`` supported."""
    tags = (customer or {}).get("preferred_locales") or []
    return next(filter(None, map(_supported, tags)), ENGLISH)


def human_date(timestamp: int, locale: str = ENGLISH) -> str:
    """``4 Dec 2026`` in English; ``4 de dez. de 2026`` in Portuguese (CLDR's medium date, through Babel)."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    if locale == PORTUGUESE:
        return format_date(moment.date(), "medium", locale="pt_BR")
    return moment.strftime("%-d %b %Y")


def interval_text(amount: str, recurring: dict[str, Any], locale: str = ENGLISH) -> str:
    """``R$ 99,00 / month`` or ``R$ 99,00 / mês``; ``… every 3 months`` or ``… a cada 3 meses``."""
    interval, count = recurring.get("interval") or "month", recurring.get("interval_count") or 1
    if locale == PORTUGUESE:
        one, many = INTERVALS_PT.get(interval, (interval, interval))
        if count == 1:
            return text("per_interval", locale, amount=amount, interval=one)
        return text("every_intervals", locale, amount=amount, count=count, interval=many)
    if count == 1:
        return text("per_interval", locale, amount=amount, interval=interval)
    return text("every_intervals", locale, amount=amount, count=count, interval=interval)

"""Hosted pages: Checkout (``/checkout/<id>``) and invoices (``/invoice/<id>``, ``.../pdf``).

Card numbers and CVCs posted here are validated, reduced to card details and
dropped: the form is never re-filled with them and nothing logs them.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request

from . import cards
from .clock import iso_date
from .locales import ENGLISH, checkout_locale, customer_locale, human_date, text
from .errors import CardError, StripeError
from .money import format_amount, format_price
from .pdf import invoice_pdf
from .resources import checkout_sessions, invoices, payment_methods

pages = Blueprint("pages", __name__, template_folder="templates")


@pages.app_context_processor
def _english_by_default() -> dict[str, Any]:
    # Pages render in English unless they pass their own ``t`` and ``lang`` (the Checkout page, in its locale).
    return {"t": lambda key, **fields: text(key, ENGLISH, **fields), "lang": ENGLISH}


def _locale(session: dict[str, Any]) -> str:
    """The language of a Checkout Session's pages, as Stripe picks it (``locale``; ``auto``: the browser's)."""
    return checkout_locale(session.get("locale"), request.accept_languages.values())


def _translator(locale: str) -> dict[str, Any]:
    return {"t": lambda key, **fields: text(key, locale, **fields), "lang": locale}


def _card_message(error: CardError, locale: str) -> str:
    """A card error as Checkout shows it, in the page's language (Stripe's English message for a code the
    sandbox has no translation of)."""
    if locale == ENGLISH:
        return error.message
    for code in (error.decline_code, error.code):
        key = CARD_MESSAGE_KEYS.get(code or "")
        if key:
            return text(key, locale)
    return error.message


CARD_MESSAGE_KEYS = {
    "insufficient_funds": "insufficient_funds", "expired_card": "expired_card", "incorrect_number": "incorrect_number",
    "invalid_cvc": "invalid_cvc", "invalid_expiry_month": "expiry_invalid", "invalid_expiry_year": "expiry_invalid",
    "card_declined": "card_declined", "generic_decline": "card_declined", "lost_card": "card_declined",
    "stolen_card": "card_declined", "authentication_required": "card_declined",
    "authentication_failed": "authentication_failed",
}


def _box():
    from .server import sandbox

    return sandbox()


class SessionClosed(Exception):
    pass


# -- card form ---------------------------------------------------------------------------------
def _read_card_form(now: int, need_email: bool,
                    locale: str = ENGLISH) -> tuple[dict[str, str], dict[str, str], cards.CardDetails | None]:
    """Validate the posted card form; returns (values to re-show, field errors, card details)."""
    form = {key: (request.form.get(key) or "").strip() for key in ("email", "billingName", "cardExpiry")}
    number = cards.normalize_number(request.form.get("cardNumber") or "")
    cvc = (request.form.get("cardCvc") or "").strip()
    errors: dict[str, str] = {}
    if need_email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", form["email"]):
        errors["email"] = text("email_invalid", locale) if form["email"] else text("email_missing", locale)
    if not number:
        errors["cardNumber"] = text("number_incomplete", locale)
    elif not cards.luhn_ok(number):
        errors["cardNumber"] = text("number_invalid", locale)
    moment = datetime.fromtimestamp(now, tz=timezone.utc)
    match = re.fullmatch(r"(\d{1,2})\s*/\s*(\d{2}|\d{4})", form["cardExpiry"])
    month = year = 0
    if not match:
        errors["cardExpiry"] = text("expiry_incomplete", locale)
    else:
        month, year = int(match.group(1)), int(match.group(2))
        year = year + 2000 if year < 100 else year
        if not 1 <= month <= 12:
            errors["cardExpiry"] = text("expiry_invalid", locale)
        elif (year, month) < (moment.year, moment.month):
            errors["cardExpiry"] = text("expiry_past", locale)
    if not re.fullmatch(r"\d{3,4}", cvc):
        errors["cardCvc"] = text("cvc_incomplete", locale)
    if not form["billingName"]:
        errors["billingName"] = text("name_missing", locale)
    if errors:
        return form, errors, None
    try:
        details = cards.check_card(number, month, year, cvc, moment.year, moment.month)
    except CardError as error:
        return form, {"_card": _card_message(error, locale)}, None
    return form, errors, details


def _success_url(session: dict[str, Any]) -> str | None:
    url = session.get("success_url")
    return url.replace("{CHECKOUT_SESSION_ID}", session["id"]) if url else None


# -- checkout ---------------------------------------------------------------------------------------
def _summary(ctx, session: dict[str, Any], locale: str = ENGLISH) -> dict[str, Any]:
    extra = ctx.db.extra(session["id"])
    items = extra.get("line_items") or []
    lines = []
    price_label = trial_label = None
    for item in items:
        price = item["price"]
        lines.append({"name": item["description"], "quantity": item["quantity"],
                      "detail": format_price(price["unit_amount"], price["currency"], price["recurring"], locale),
                      "amount": format_amount(item["amount_total"], price["currency"])})
    currency = session.get("currency") or (items[0]["currency"] if items else "usd")
    total = sum(item["amount_total"] for item in items)
    mode = session["mode"]
    if mode == "subscription" and items:
        first = items[0]["price"]
        label = format_price(total, currency, first["recurring"], locale)
        sub_data = extra.get("subscription_data") or {}
        days = sub_data.get("trial_period_days")
        if sub_data.get("trial_end"):
            trial_label = text("trial_until", locale, date=human_date(sub_data["trial_end"], locale), price=label)
            price_label = text("days_free", locale, days=days) if days else text("free_trial", locale)
        elif days:
            price_label = text("days_free", locale, days=days)
            trial_label = text("then", locale, price=label)
        else:
            price_label = label
        headline = text("subscribe_to", locale, name=items[0]["description"])
        button = text("start_trial" if (days or sub_data.get("trial_end")) else "pay_and_subscribe", locale)
        total_label = text("total_due_today", locale)
        total_text = format_amount(0 if (days or sub_data.get("trial_end")) else total, currency)
    elif mode == "payment":
        headline = text("pay", locale)
        price_label = format_amount(total, currency)
        button = text("pay_amount", locale, amount=price_label)
        total_label, total_text = text("total_due", locale), price_label
    else:
        headline = text("save_card_headline", locale)
        button = text("save_card", locale)
        total_label, total_text = "", ""
    return {"lines": lines, "price_label": price_label, "trial_label": trial_label, "headline": headline,
            "button": button, "total_label": total_label, "total": total_text, "title": headline}


def _render_checkout(ctx, session: dict[str, Any], *, form: dict[str, str] | None = None,
                     errors: dict[str, str] | None = None, error: str | None = None, status: int = 200) -> Response:
    customer = ctx.db.get(session["customer"]) if session.get("customer") else None
    email = (customer or {}).get("email") or session.get("customer_email") or ""
    values = {"email": email, "billingName": "", "cardExpiry": ""}
    values.update({k: v for k, v in (form or {}).items() if v})
    if email:
        values["email"] = email
    state = session["status"] if session["status"] in ("complete", "expired") else "open"
    locale = _locale(session)
    html = render_template("checkout.html", session=session, state=state, form=values, errors=errors or {},
                           error=error, email_locked=bool(email), action=f"/checkout/{session['id']}",
                           success_url=_success_url(session), **_summary(ctx, session, locale),
                           **_translator(locale))
    return Response(html, status=status, mimetype="text/html")


def _load_session(ctx, session_id: str) -> dict[str, Any] | None:
    session = ctx.db.get(session_id)
    return session if session and session.get("object") == "checkout.session" else None


def _expire_if_due(session_id: str) -> None:
    box = _box()
    with box.unit_of_work(request.host_url, subjects=[session_id]) as ctx:
        session = _load_session(ctx, session_id)
        if session and session["status"] == "open" and ctx.now >= session["expires_at"]:
            checkout_sessions.expire(ctx, session)


def _not_found(what: str) -> Response:
    return Response(render_template("done.html", title="Not found", message=f"No such {what}."), status=404,
                    mimetype="text/html")


@pages.get("/checkout/<session_id>")
def checkout_page(session_id: str) -> Response:
    """The hosted payment page of a Checkout Session."""
    _expire_if_due(session_id)
    with _box().reading(request.host_url, subjects=[session_id]) as ctx:
        session = _load_session(ctx, session_id)
        if session is None:
            return _not_found("checkout session")
        return _render_checkout(ctx, session)


def _complete(session_id: str, details: cards.CardDetails, email: str | None, name: str | None,
              authenticated: bool) -> tuple[str, Any]:
    """Run the checkout in one transaction: ("done", session) | ("closed", None) | ("declined", CardError)."""
    box = _box()
    try:
        with box.unit_of_work(request.host_url, subjects=[session_id]) as ctx:
            session = _load_session(ctx, session_id)
            if session is None or session["status"] != "open":
                raise SessionClosed()
            extra = ctx.db.extra(session_id)
            extra.pop("pending_authentication", None)
            ctx.db.save(session, extra=extra)
            session = checkout_sessions.complete(ctx, session, details, email=email, name=name,
                                                 authenticated=authenticated)
            return "done", session
    except SessionClosed:
        return "closed", None
    except CardError as error:
        return "declined", error


def _after(session_id: str, outcome: str, value: Any, form: dict[str, str]) -> Response:
    """``value``: the completed session, or the ``CardError`` that declined it."""
    if outcome == "done":
        target = _success_url(value)
        if target:
            return redirect(target, code=303)
        locale = _locale(value)
        return Response(render_template("done.html", title=text("done_title", locale), message=text("done", locale),
                                        **_translator(locale)), mimetype="text/html")
    with _box().reading(request.host_url, subjects=[session_id]) as ctx:
        session = _load_session(ctx, session_id)
        if outcome == "closed":
            return _render_checkout(ctx, session, status=409)
        return _render_checkout(ctx, session, form=form, error=_card_message(value, _locale(session)), status=402)


@pages.post("/checkout/<session_id>")
def checkout_submit(session_id: str) -> Response:
    """Submit the hosted checkout form."""
    _expire_if_due(session_id)
    box = _box()
    with box.reading(request.host_url, subjects=[session_id]) as ctx:
        session = _load_session(ctx, session_id)
        if session is None:
            return _not_found("checkout session")
        if session["status"] != "open":
            return _render_checkout(ctx, session, status=409)
        customer = ctx.db.get(session["customer"]) if session.get("customer") else None
        need_email = not ((customer or {}).get("email") or session.get("customer_email"))
        form, errors, details = _read_card_form(ctx.now, need_email, _locale(session))
        if details is None:
            message = errors.pop("_card", None)
            return _render_checkout(ctx, session, form=form, errors=errors, error=message,
                                    status=402 if message else 400)
        email = form["email"] or (customer or {}).get("email") or session.get("customer_email")
    card = details.test_card
    if card is not None and card.behaviour == cards.AUTH_REQUIRED:
        return _start_authentication(session_id, details, email, form["billingName"])
    outcome, value = _complete(session_id, details, email, form["billingName"], authenticated=False)
    return _after(session_id, outcome, value, form)


def _start_authentication(session_id: str, details: cards.CardDetails, email: str | None, name: str) -> Response:
    """Keep what the 3D Secure step needs (no number, no CVC) and show the challenge."""
    box = _box()
    with box.unit_of_work(request.host_url, subjects=[session_id]) as ctx:
        session = _load_session(ctx, session_id)
        extra = ctx.db.extra(session_id)
        extra["pending_authentication"] = {
            "card": details.key, "brand": details.brand, "last4": details.last4, "funding": details.funding,
            "country": details.country, "exp_month": details.exp_month, "exp_year": details.exp_year,
            "fingerprint": details.fingerprint, "email": email, "name": name}
        ctx.db.save(session, extra=extra)
        locale = _locale(session)
        summary = _summary(ctx, session, locale)
    amount = summary["total"] or summary["price_label"] or ""
    html = render_template("threeds.html", amount=amount, brand=details.brand.title(), last4=details.last4,
                           action=f"/checkout/{session_id}/3ds", **_translator(locale))
    return Response(html, mimetype="text/html")


@pages.post("/checkout/<session_id>/3ds")
def checkout_authenticate(session_id: str) -> Response:
    """Answer the simulated 3D Secure challenge."""
    with _box().reading(request.host_url, subjects=[session_id]) as ctx:
        session = _load_session(ctx, session_id)
        if session is None:
            return _not_found("checkout session")
        pending = ctx.db.extra(session_id).get("pending_authentication")
        if session["status"] != "open" or not pending:
            return _render_checkout(ctx, session, status=409)
    form = {"email": pending.get("email") or "", "billingName": pending.get("name") or "", "cardExpiry": ""}
    if request.form.get("action") != "complete":
        with _box().unit_of_work(request.host_url, subjects=[session_id]) as ctx:
            extra = ctx.db.extra(session_id)
            extra.pop("pending_authentication", None)
            ctx.db.save(session, extra=extra)
        return _after(session_id, "declined", CardError(text("authentication_failed"), code="authentication_failed"),
                      form)
    details = cards.CardDetails(pending["card"], pending["brand"], pending["last4"], pending["funding"],
                                pending["country"], pending["exp_month"], pending["exp_year"], pending["fingerprint"])
    outcome, value = _complete(session_id, details, pending.get("email"), pending.get("name"), authenticated=True)
    return _after(session_id, outcome, value, form)


# -- invoices ---------------------------------------------------------------------------------------
def _render_invoice(ctx, inv: dict[str, Any], *, form: dict[str, str] | None = None,
                    errors: dict[str, str] | None = None, error: str | None = None, message: str | None = None,
                    status: int = 200) -> Response:
    """``message``: a key of ``locales.TEXTS``; ``error``: a card error already in the page's language."""
    currency = inv["currency"]
    # Stripe writes a hosted invoice in its customer's preferred language.
    locale = customer_locale(ctx.db.get(inv["customer"]) if inv.get("customer") else None)
    lines = []
    for line in inv["lines"]["data"]:
        period = line.get("period") or {}
        lines.append({"description": line["description"], "amount": format_amount(line["amount"], currency),
                      "period": f"{iso_date(period['start'])} – {iso_date(period['end'])}"
                      if period.get("start") else ""})
    html = render_template(
        "invoice.html", invoice=inv, lines=lines, form=form or {"cardExpiry": "", "billingName": ""},
        action=f"/invoice/{inv['id']}",
        pdf_url=f"/invoice/{inv['id']}/pdf", created=human_date(inv["created"], locale),
        paid_at=human_date(inv["status_transitions"]["paid_at"] or inv["created"], locale),
        subtotal=format_amount(inv["subtotal"], currency), amount_due=format_amount(inv["amount_due"], currency),
        amount_paid=format_amount(inv["amount_paid"], currency),
        amount_remaining=format_amount(inv["amount_remaining"], currency),
        starting_balance=format_amount(inv["starting_balance"], currency) if inv["starting_balance"] else None,
        message=text(message, locale) if message else None, error=error, errors=errors or {}, **_translator(locale))
    return Response(html, status=status, mimetype="text/html")


def _load_invoice(ctx, invoice_id: str) -> dict[str, Any] | None:
    inv = ctx.db.get(invoice_id)
    return inv if inv and inv.get("object") == "invoice" else None


@pages.get("/invoice/<invoice_id>")
def invoice_page(invoice_id: str) -> Response:
    """The hosted invoice page: lines, totals, status, and a pay form while open."""
    with _box().reading(request.host_url, subjects=[invoice_id]) as ctx:
        inv = _load_invoice(ctx, invoice_id)
        if inv is None:
            return _not_found("invoice")
        return _render_invoice(ctx, inv, message="payment_received" if request.args.get("paid") else None)


@pages.post("/invoice/<invoice_id>")
def invoice_pay(invoice_id: str) -> Response:
    """Pay an open invoice with a card entered on the hosted page."""
    box = _box()
    with box.reading(request.host_url, subjects=[invoice_id]) as ctx:
        inv = _load_invoice(ctx, invoice_id)
        if inv is None:
            return _not_found("invoice")
        if inv["status"] not in ("open", "uncollectible"):
            return _render_invoice(ctx, inv, status=409)
        locale = customer_locale(ctx.db.get(inv["customer"]) if inv.get("customer") else None)
        form, errors, details = _read_card_form(ctx.now, need_email=False, locale=locale)
        if details is None:
            declined = errors.pop("_card", None)
            return _render_invoice(ctx, inv, form=form, errors=errors, error=declined, status=402 if declined else 400)
    error: StripeError | None = None
    try:
        with box.unit_of_work(request.host_url, subjects=[invoice_id]) as ctx:
            inv = _load_invoice(ctx, invoice_id)
            if inv is None or inv["status"] not in ("open", "uncollectible"):
                return redirect(f"/invoice/{invoice_id}", code=303)
            pm = payment_methods.store_new(ctx, details, name=form["billingName"])
            pm = payment_methods.attach(ctx, pm, inv["customer"])
            # The customer is present on this page, so an authentication step counts as done.
            error = invoices.collect(ctx, inv, pm_id=pm["id"], off_session=False, authenticated=True)
    except CardError as declined:  # declined when attaching: nothing was recorded
        error = declined
    if error is None:
        return redirect(f"/invoice/{invoice_id}?paid=1", code=303)
    with box.reading(request.host_url, subjects=[invoice_id]) as ctx:
        return _render_invoice(ctx, _load_invoice(ctx, invoice_id), form=form, status=402,
                               error=_card_message(error, locale) if isinstance(error, CardError) else error.message)


@pages.get("/invoice/<invoice_id>/pdf")
def invoice_pdf_view(invoice_id: str) -> Response:
    """The invoice as a PDF document."""
    with _box().reading(request.host_url, subjects=[invoice_id]) as ctx:
        inv = _load_invoice(ctx, invoice_id)
        if inv is None:
            return _not_found("invoice")
    filename = f"Invoice-{inv.get('number') or inv['id']}.pdf"
    return Response(invoice_pdf(inv), mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})

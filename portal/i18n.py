"""Language choice and locale-aware formatting of money and dates.

The language follows the browser unless the user picked one with the switch
(kept in the session). Money is formatted only here, at the edge, from integer
minor units.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Flask, redirect, request, session, url_for
from flask_babel import format_date, format_datetime, get_locale
from flask_login import current_user

from billing.customers import follow_owner_languages
from billing.money import Money
from portal.extensions import db
from portal.payments import gateway
from portal.redirects import is_safe_redirect
from portal.request_context import request_origin

LANGUAGES = {"pt_BR": "Português", "en": "English"}
DEFAULT_LOCALE = "pt_BR"

bp = Blueprint("i18n", __name__)


def select_locale() -> str:
    """The switch's choice in this browser, else the browser's."""
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(list(LANGUAGES), default=DEFAULT_LOCALE)


def money(amount: int | None, currency: str | None) -> str:
    if amount is None or currency is None:
        return ""
    return Money(int(amount), currency).format(str(get_locale()))


def date(value: datetime | None, fmt: str = "medium") -> str:
    return format_date(value, fmt) if value else ""


def datetime_(value: datetime | None, fmt: str = "medium") -> str:
    """A date and time with its zone (São Paulo's, as every date here), so nobody guesses which one it is."""
    if not value:
        return ""
    return f"{format_datetime(value, fmt)} {format_datetime(value, 'zzzz' if fmt == 'full' else 'ZZZZ')}"


def unix_datetime(seconds: int | None, fmt: str = "short") -> str:
    """Stripe's Unix timestamps, as a date and time with its zone."""
    return datetime_(datetime.fromtimestamp(seconds, timezone.utc), fmt) if seconds else ""


@bp.post("/language")
def switch_language():
    """Remember the chosen language and go back to the page the user was on."""
    lang = request.form.get("lang", "")
    if lang in LANGUAGES:
        session["lang"] = lang
        if current_user.is_authenticated:
            remember_language(current_user, lang)
    target = request.form.get("next", "")
    return redirect(target if is_safe_redirect(target) else url_for("dashboard.index"))


def remember_language(user, lang: str) -> None:
    """Keep the language ``user`` last read the portal in (signing in, or the switch): their e-mails are
    written in it, and Stripe's invoices and pages follow it."""
    if user.locale == lang:
        return
    user.locale = lang
    db.session.commit()
    # Stripe's invoices and receipts for the user's apps follow (billing.customers).
    billed = [app for app in user.apps if app.stripe_customer_id]
    if billed:
        follow_owner_languages(db.session, gateway(), billed, changed_by=user.id, origin=request_origin())


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["date"] = date
    app.jinja_env.filters["datetime"] = datetime_
    app.jinja_env.filters["unix_datetime"] = unix_datetime
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["current_locale"] = lambda: str(get_locale())

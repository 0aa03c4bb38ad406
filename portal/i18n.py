"""Language choice and locale-aware formatting of money and dates.

The language follows the browser unless the user picked one with the switch
(kept in the session). Money is formatted only here, at the edge, from integer
minor units.
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from flask import Blueprint, Flask, redirect, request, session, url_for
from flask_babel import format_date, format_datetime, get_locale, get_timezone, get_translations
from jinja2 import pass_context
from jinja2.runtime import Context
from flask_login import current_user
from markupsafe import Markup

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


# Pages show the same few amounts and dates over and over (a plan's price on every card, an invoice's dates on
# every row), and Babel parses the locale's pattern again for each one: each text is kept once made, keyed by
# everything it depends on (the locale and time zone too), in a bounded cache.
FORMATTED_KEPT = 4096


@lru_cache(maxsize=FORMATTED_KEPT)
def _money_text(amount: int, currency: str, locale: str) -> str:
    return Money(amount, currency).format(locale)


@lru_cache(maxsize=FORMATTED_KEPT)
def _date_text(value: datetime, fmt: str, _locale: str, _zone: str) -> str:
    return format_date(value, fmt)


@lru_cache(maxsize=FORMATTED_KEPT)
def _datetime_text(value: datetime, fmt: str, _locale: str, _zone: str) -> str:
    return f"{format_datetime(value, fmt)} {format_datetime(value, 'zzzz' if fmt == 'full' else 'ZZZZ')}"


def money(amount: int | None, currency: str | None) -> str:
    if amount is None or currency is None:
        return ""
    return _money_text(int(amount), currency, str(get_locale()))


def date(value: datetime | None, fmt: str = "medium") -> str:
    return _date_text(value, fmt, str(get_locale()), str(get_timezone())) if value else ""


def datetime_(value: datetime | None, fmt: str = "medium") -> str:
    """A date and time with its zone (São Paulo's, as every date here), so nobody guesses which one it is."""
    if not value:
        return ""
    return _datetime_text(value, fmt, str(get_locale()), str(get_timezone()))


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


# The request's translations, put in each template's context once (Flask-Babel's own template gettext looks
# them up again through the request context for every one of a page's 30 to 60 strings).
_TRANSLATIONS = "_kbp_translations"


def _translations(context: Context):
    # A macro imported without context has only the globals: it looks them up as Flask-Babel does.
    return context.get(_TRANSLATIONS) or get_translations()


@pass_context
def _template_gettext(context: Context, string: str, /, **variables: Any) -> str:
    """``_()`` and ``gettext()`` in templates: Jinja's "newstyle" gettext, in one call instead of three.

    Jinja wraps an installed gettext in one that autoescapes and always formats (``rv % variables``), and
    reaches it from ``_`` through another call: a page's 30 to 60 strings paid both calls and a Markup
    format each (py-spy under the crowd: 5 % of a worker). Same result: a text with no ``%`` and no
    variables is what formatting it would give. Positional-only, as Jinja's, so a variable may be called
    ``string`` or ``context``.
    """
    text = _translations(context).ugettext(string)
    if context.eval_ctx.autoescape:
        text = Markup(text)
    return text % variables if variables or "%" in text else text


@pass_context
def _template_ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return _translations(context).ungettext(singular, plural, n)


@pass_context
def _template_pgettext(context: Context, message_context: str, string: str) -> str:
    return _translations(context).upgettext(message_context, string)


@pass_context
def _template_npgettext(context: Context, message_context: str, singular: str, plural: str, n: int) -> str:
    return _translations(context).unpgettext(message_context, singular, plural, n)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]  # added by jinja2.ext.i18n
        gettext=_template_gettext, ngettext=_template_ngettext, pgettext=_template_pgettext,
        npgettext=_template_npgettext, newstyle=True)
    # Over Jinja's wrappers of gettext (above): ours is newstyle already.
    app.jinja_env.globals.update(_=_template_gettext, gettext=_template_gettext)
    # Read when a template starts rendering: a render inside force_locale (an e-mail) gets that language's.
    app.context_processor(lambda: {_TRANSLATIONS: get_translations()})
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["date"] = date
    app.jinja_env.filters["datetime"] = datetime_
    app.jinja_env.filters["unix_datetime"] = unix_datetime
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["current_locale"] = lambda: str(get_locale())

"""A notice's subject and body, written from its kind's template in the reader's language.

Billing records only a notice's kind and data (``billing.notifications``). The Notices tab
renders them in the language of whoever reads the page; the mailer (``jobs/notices.py``)
in the recipient's: the language the user chose in the portal, for a billing e-mail that
is nobody's login the language of the app's owners, else Portuguese. Amounts and dates go
through the same Babel filters as every page. A notice written before templates existed
(or an incident, a superadmin's own words) has no data and is shown as it was written.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Optional

from flask import Flask, current_app, g
from flask_babel import force_locale
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.models import App, OutboxMessage, User
from billing.notifications import NoticeKind
from billing.plans import plan_by_code
from portal.extensions import db
from portal.i18n import DEFAULT_LOCALE, LANGUAGES
from portal.wording import plan_name

TEMPLATES = "notices/mail/{kind}.txt"
TEMPLATED = frozenset(kind for kind in NoticeKind if kind != NoticeKind.INCIDENT)


def _values(data: dict[str, Any]) -> dict[str, Any]:
    """Dates back from ISO 8601 (``*_at`` a moment, ``*_on`` a calendar day), for Babel to format."""
    values = dict(data)
    for key, value in data.items():
        if isinstance(value, str) and key.endswith("_at"):
            values[key] = datetime.fromisoformat(value)
        elif isinstance(value, str) and key.endswith("_on"):
            values[key] = date.fromisoformat(value)
    return values


def _plan(code: Optional[str]) -> str:
    if not code:
        return ""
    # A page of notices names the same few plans again and again: one read per plan per request (or job).
    plans = g.setdefault("notice_plans", {})
    if code not in plans:
        plans[code] = plan_by_code(db.session, code)
    return plan_name(plans[code])


def _tidy(text: str) -> str:
    """The template's indentation and blank lines out; paragraphs kept apart by one blank line."""
    lines = [line.strip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def render(message: OutboxMessage, locale: Optional[str] = None) -> tuple[str, str]:
    """``(subject, body)`` of ``message``, in ``locale`` (the current request's language when None)."""
    if message.data is None or message.kind not in TEMPLATED:
        return message.subject or "", message.body or ""
    template = current_app.jinja_env.get_template(TEMPLATES.format(kind=message.kind))
    context = {"data": _values(message.data), "app_name": message.app.name if message.app else "", "plan": _plan}
    if locale is None:
        module = template.make_module(context)
    else:
        with force_locale(locale):
            module = template.make_module(context)
    return _tidy(module.subject), _tidy(str(module))


def recipient_locale(session: Session, message: OutboxMessage) -> str:
    """The language an e-mail is written in: its recipient's, or the app's owners' for a billing address."""
    chosen = session.scalar(select(User.locale).where(User.email == message.to_email.lower()))
    if chosen in LANGUAGES:
        return chosen
    if message.app_id is not None:
        app = session.get(App, message.app_id)
        for owner in sorted(app.owners, key=lambda user: user.id) if app else []:
            if owner.locale in LANGUAGES:
                return owner.locale
    return DEFAULT_LOCALE


def for_recipient(message: OutboxMessage) -> tuple[str, str]:
    """The e-mail's subject and body, in its recipient's language (what the mailer sends)."""
    return render(message, recipient_locale(db.session, message))


def init_app(app: Flask) -> None:
    app.jinja_env.globals["render_notice"] = render

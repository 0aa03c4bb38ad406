"""An app's Stripe customer: the languages Stripe writes to it in.

Stripe writes invoices, receipts and its own e-mails in the first of the customer's
``preferred_locales`` it supports, so the customer carries the languages of the app's owners
(the one each last used the portal in), the first owner's first. Checkout pages get the
language of whoever opens them (``stripe_locale``).
"""
from __future__ import annotations

import logging
from typing import Optional

from sqlalchemy.orm import Session

from billing import audit, clock
from billing.audit import Origin
from billing.errors import GatewayError
from billing.gateway import StripeGateway
from billing.models import App

log = logging.getLogger(__name__)

# Our locales (Babel's) and Stripe's tags for them.
STRIPE_LOCALES = {"pt_BR": "pt-BR", "en": "en"}
DEFAULT_LOCALE = "pt_BR"


def stripe_locale(locale: Optional[str]) -> Optional[str]:
    """Stripe's tag for one of our locales (None for anything else: Stripe then picks by the browser)."""
    return STRIPE_LOCALES.get(locale or "")


def preferred_locales(app: App) -> list[str]:
    """The customer's ``preferred_locales``: each owner's language, the first owner's first, no repeats."""
    tags: list[str] = []
    for owner in sorted(app.owners, key=lambda user: user.id):
        tag = stripe_locale(owner.locale)
        if tag and tag not in tags:
            tags.append(tag)
    return tags or [STRIPE_LOCALES[DEFAULT_LOCALE]]


def follow_owner_languages(session: Session, gateway: StripeGateway, apps: list[App], *, changed_by: int,
                           origin: Origin) -> int:
    """Tell Stripe the owners' languages of ``apps`` after one of them changed theirs; returns customers updated.

    Commits before calling Stripe (no transaction stays open across the call) and records each
    update it made. A failure is logged and skipped: the page that changed the language must not
    fail, and the next change (or signing in again) sends the languages again.
    """
    wanted = [(app.id, app.stripe_customer_id, preferred_locales(app)) for app in apps if app.stripe_customer_id]
    session.commit()
    change = f"user:{changed_by}:at:{int(clock.now().timestamp())}"
    done = 0
    for app_id, customer_id, locales in wanted:
        assert customer_id is not None
        try:
            gateway.set_preferred_locales(customer_id, locales, change=change)
        except GatewayError as error:
            log.warning("could not set the languages of customer %s: %s", customer_id, error.message)
            continue
        audit.record(session, action="customer.preferred_locales_set", object_type="app", object_id=app_id,
                     app_id=app_id, before=None, after={"preferred_locales": locales}, origin=origin)
        session.commit()
        done += 1
    return done

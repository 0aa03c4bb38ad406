"""What the billing views share: who is acting, the double-submit token, return URLs and messages."""
from __future__ import annotations

import re
import secrets
import uuid

from flask import abort, g, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from billing.models import App, User
from billing.subscriptions import Refused
from billing.sync import Origin

_ATTEMPT = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

UNAVAILABLE = _l("Payments are temporarily unavailable, nothing was charged. Please try again in a few minutes.")
NOT_CONFIRMED = _l("We could not confirm your payment with Stripe yet. If you paid, it will appear here shortly.")

REFUSALS = {
    "plan_unavailable": _l("This plan cannot be bought."),
    "live_subscription": _l("This app already has a subscription. Change its plan below instead."),
    "no_subscription": _l("This app has no active subscription."),
    "already_on_plan": _l("The app is already on this plan."),
    "not_an_upgrade": _l("That plan is not an upgrade."),
    "not_a_downgrade": _l("That plan is not a downgrade."),
    "change_scheduled": _l("A plan change is already scheduled. Undo it first."),
    "cancel_pending": _l("The subscription is set to end. Resume it before changing plans."),
    "past_due": _l("An invoice is overdue. Pay it before changing plans."),
    "not_changeable": _l("The subscription cannot change plans in its current state."),
    "changed_meanwhile": _l("The subscription changed meanwhile. Please review it and try again."),
    "stale_preview": _l("The price was recalculated because time has passed. Please review it and confirm again."),
    "proration_mismatch": _l("We could not confirm the exact price of this change, so nothing was changed. "
                             "Our team has been alerted."),
    "period_over": _l("The billing period has already ended. Subscribe again to continue."),
}


def request_id() -> str:
    """This request's correlation id: the proxy's X-Request-Id when sane, a fresh one otherwise."""
    if "request_id" not in g:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.match(given) else f"req_{uuid.uuid4().hex}"
    return g.request_id


def origin_for(user: User) -> Origin:
    return Origin(actor="user", correlation_id=request_id(), actor_user_id=user.id)


def request_origin() -> Origin:
    """The signed-in user, for the audit trail."""
    return origin_for(current_user)


def new_attempt() -> str:
    """A token rendered into a form; the form's submit uses it as its idempotency key."""
    return secrets.token_urlsafe(16)


def attempt_from(value: str | None) -> str:
    """The form's attempt token, or a 400 when it is missing or malformed."""
    if not value or not _ATTEMPT.match(value):
        abort(400, description="missing or malformed attempt token")
    return value


def success_url() -> str:
    # Stripe fills in {CHECKOUT_SESSION_ID}; url_for would escape the braces.
    return url_for("subscriptions.checkout_success", _external=True) + "?session_id={CHECKOUT_SESSION_ID}"


def cancel_url(app: App) -> str:
    return url_for("subscriptions.checkout_canceled", app_id=app.id, _external=True)


def refusal_message(error: Refused) -> str:
    return str(REFUSALS.get(error.code, error))

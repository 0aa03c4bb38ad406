"""What the billing views share: return URLs and messages (who acts: ``portal.request_context``)."""
from __future__ import annotations

from portal.redirects import external_url
from flask_babel import lazy_gettext as _l

from billing.models import App
from billing.subscriptions import Refused

UNAVAILABLE = _l("Payments are temporarily unavailable, nothing was charged. Please try again in a few minutes.")
CONFIRMING = _l("We are confirming the result of your payment with Stripe. Please do not pay again: "
                "this page will show the result in a few minutes.")
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


def success_url() -> str:
    # Stripe fills in {CHECKOUT_SESSION_ID}; url_for would escape the braces.
    return external_url("subscriptions.checkout_success") + "?session_id={CHECKOUT_SESSION_ID}"


def cancel_url(app: App) -> str:
    return external_url("subscriptions.checkout_canceled", app_id=app.id)


def refusal_message(error: Refused) -> str:
    return str(REFUSALS.get(error.code, error))


def refusal_text(code: str) -> str:
    """What a refusal ``code`` (``plan_change``'s reason) tells the owner."""
    return str(REFUSALS.get(code, _l("Not available right now")))

"""What the billing views share: return URLs and messages (who acts: ``portal.request_context``)."""
from __future__ import annotations

from portal.redirects import external_url
from flask_babel import lazy_gettext as _l

from billing.models import App, KernelPlan
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
    "action_in_progress": _l("Another change to this app's billing is still in progress. Please wait a moment "
                             "and try again."),
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


# What each plan includes, shown on its card. The catalogue's codes are the keys; a plan added to the
# catalogue without an entry here shows no list rather than a wrong one.
PLAN_FEATURES = {
    "free": (_l("1 app environment"), _l("Shared resources"), _l("Community support")),
    "pro": (_l("3 environments: production, staging and preview"), _l("Dedicated resources"),
            _l("Custom domains"), _l("E-mail support, answered within one business day")),
    "enterprise": (_l("Unlimited environments"), _l("Dedicated resources with priority scaling"),
                   _l("Single sign-on and audit log export"), _l("Support around the clock, answered within an hour")),
}


def plan_features(plan: KernelPlan) -> tuple[str, ...]:
    return PLAN_FEATURES.get(plan.code, ())


# Why an owner cancels: Stripe's own cancellation feedback codes, so the answer can go to Stripe as it is.
CANCEL_REASONS = {
    "too_expensive": _l("It costs too much"),
    "missing_features": _l("A feature I need is missing"),
    "switched_service": _l("I am moving to another service"),
    "unused": _l("I do not use it enough"),
    "too_complex": _l("It is too hard to use"),
    "low_quality": _l("It does not work well enough"),
    "other": _l("Another reason"),
}

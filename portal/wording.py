"""How a subscription's state and a plan's name read, in one place for every page.

The billing page's badge, the dashboard, an app's overview and the admin pages all say
"active", "trial until…", "canceling on…", "past due", "paused" or "canceled" from here,
so a canceled plan can never read "Active" on one page and "Canceled" on another.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from flask import Flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from billing.models import App, AppStatus, AppSubscription, KernelPlan
from billing.states import SubscriptionStatus
from portal.i18n import date, money

# Stripe's statuses by themselves (the admin's status filter); a subscription's state adds its dates.
STATUS_LABELS = {
    SubscriptionStatus.TRIALING: _l("Trial"),
    SubscriptionStatus.ACTIVE: _l("Active"),
    SubscriptionStatus.PAST_DUE: _l("Past due"),
    SubscriptionStatus.UNPAID: _l("Unpaid"),
    SubscriptionStatus.PAUSED: _l("Paused"),
    SubscriptionStatus.CANCELED: _l("Canceled"),
    SubscriptionStatus.INCOMPLETE: _l("Awaiting payment"),
    SubscriptionStatus.INCOMPLETE_EXPIRED: _l("Expired"),
}


# A price's billing interval (Stripe's ``recurring.interval``), as a page says it.
PER_INTERVAL = {"day": _l("per day"), "week": _l("per week"), "month": _l("per month"), "year": _l("per year")}
PRICE_PER_INTERVAL = {"day": _l("%(amount)s per day"), "week": _l("%(amount)s per week"),
                      "month": _l("%(amount)s per month"), "year": _l("%(amount)s per year")}


def per_interval(interval: str) -> str:
    """"per month" for a monthly price, "per year" for a yearly one."""
    return str(PER_INTERVAL[interval])


def price_per_interval(amount: int, currency: str, interval: str) -> str:
    """"R$ 99,00 per month": an amount charged at each ``interval`` (the plan's, never assumed)."""
    return str(PRICE_PER_INTERVAL[interval]) % {"amount": money(amount, currency)}


@dataclass(frozen=True)
class State:
    """A subscription's state as people read it: ``kind`` picks the badge's colour."""

    kind: str  # active, trialing, canceling, past_due, paused, canceled, incomplete
    label: str


def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(SubscriptionStatus(status), status))


def subscription_state(sub: Optional[AppSubscription], app: Optional[App] = None) -> Optional[State]:
    """The state of ``sub`` (of ``app`` when given: a paused app reads paused whatever its subscription says).

    None for an app that never subscribed: it is simply on Free, with nothing to say about it.
    """
    if app is not None and app.status == AppStatus.PAUSED:
        return State("paused", _("Paused"))
    if sub is None:
        return None
    status = sub.status
    if status.has_ended:
        ended = ended_on(sub)
        if status == SubscriptionStatus.CANCELED and ended:
            return State("canceled", _("Canceled on %(date)s", date=date(ended)))
        return State("canceled", status_label(status))
    if status.in_dunning:
        return State("past_due", _("Past due"))
    if status == SubscriptionStatus.PAUSED:
        return State("paused", _("Paused"))
    if sub.cancel_at_period_end and sub.current_period_end:
        return State("canceling", _("Canceling on %(date)s", date=date(sub.current_period_end)))
    if status == SubscriptionStatus.TRIALING:
        if sub.trial_end:
            return State("trialing", _("Trial until %(date)s", date=date(sub.trial_end)))
        return State("trialing", _("Trial"))
    return State(status.value, status_label(status))


def ended_on(sub: AppSubscription) -> Optional[datetime]:
    """When an ended subscription ended: at its period's end when canceled for then, else when it was canceled
    (dunning cancels at once)."""
    return sub.current_period_end if sub.cancel_at_period_end else (sub.canceled_at or sub.current_period_end)


def next_date(sub: Optional[AppSubscription]) -> Optional[str]:
    """What happens next and when: renews, ends, or the trial's end; None for an ended subscription."""
    if sub is None or not sub.is_live or not sub.current_period_end:
        return None
    if sub.cancel_at_period_end:
        return _("Ends on %(date)s", date=date(sub.current_period_end))
    if sub.status == SubscriptionStatus.TRIALING and sub.trial_end:
        return _("First charge on %(date)s", date=date(sub.trial_end))
    return _("Renews on %(date)s", date=date(sub.current_period_end))


def plan_name(plan: Optional[KernelPlan]) -> str:
    """A plan's name in the reader's language: the free plan is "Free" in English and "Gratuito" in Portuguese."""
    if plan is None or plan.is_free:
        return _("Free")
    return plan.name


def current_plan(sub: Optional[AppSubscription]) -> Optional[KernelPlan]:
    """The plan an app whose newest subscription is ``sub`` is on now: that one's while it lives, else None (Free)."""
    return sub.plan if sub is not None and sub.is_live else None


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(subscription_state=subscription_state, next_date=next_date, current_plan=current_plan,
                             ended_on=ended_on, price_per_interval=price_per_interval)
    app.jinja_env.filters.update(plan_name=plan_name, status_label=status_label, per_interval=per_interval)

"""An app's plan: checkout, upgrade, downgrade, cancel, resume, payment method.

The views only translate between HTTP and ``billing.subscriptions``: they load the
app through ``get_app_or_404`` (another tenant's app is a 404), call one flow,
commit or roll back as that module's docstring says, and answer with a redirect
and a message. Every page keeps working when Stripe is down: only the actions
need it, and they say so.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Optional

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import select

from billing import audit
from billing.actions import owner_action
from billing.checkout import complete_checkout_outside_transaction
from billing import charges
from billing.errors import CardDeclined, ChargeOutcomeUnknown, GatewayError, GatewayUnavailable
from billing.gateway import upgrade_key
from billing.models import (
    App,
    AppSubscription,
    ChargeAttempt,
    ChargeStatus,
    KernelCheckoutSession,
    KernelPlan,
)
from billing.plans import offered_plans, plan_by_code
from billing.states import SubscriptionStatus
from billing.subscriptions import (
    PlanAction,
    Refused,
    StalePreview,
    cancel_at_period_end,
    live_subscription,
    plan_change,
    preview_upgrade,
    resume,
    schedule_downgrade,
    start_payment_method_update,
    start_subscription_checkout,
    undo_downgrade,
    upgrade,
)
from portal.extensions import db
from portal.notices.attention import billing_attention
from portal.i18n import date as format_date
from portal.i18n import money
from portal.payments import gateway, smtp_configured
from portal.request_context import attempt_from, new_attempt, request_origin
from portal.subscriptions.web import (
    CANCEL_REASONS,
    CONFIRMING,
    NOT_CONFIRMED,
    UNAVAILABLE,
    cancel_url,
    plan_features,
    refusal_message,
    refusal_text,
    success_url,
)
from portal.tenancy import get_app_or_404
from portal.wording import plan_name as display_plan_name

log = logging.getLogger(__name__)

bp = Blueprint("subscriptions", __name__)

DECLINE_REASONS = {
    "insufficient_funds": _l("insufficient funds"),
    "expired_card": _l("the card has expired"),
    "incorrect_cvc": _l("the security code is incorrect"),
    "authentication_required": _l("the bank asked for authentication"),
    "lost_card": _l("the card was reported lost"),
    "stolen_card": _l("the card was reported stolen"),
}
STRIPE_REFUSED = _l("The payment provider refused the request, so nothing was charged. Please try again later.")


# ---------------------------------------------------------------- the billing page


@dataclass(frozen=True)
class PlanOption:
    """One plan card on the billing page: the action it offers, and why not when it offers none."""

    plan: KernelPlan
    action: str  # a PlanAction
    why: Optional[str] = None  # for a blocked plan: the refusal its button would meet, which says what to do


def plan_options(plans: list[KernelPlan], live: Optional[AppSubscription]) -> list[PlanOption]:
    options = []
    for plan in plans:
        change = plan_change(live, plan)
        why = refusal_text(change.reason) if change.action == PlanAction.BLOCKED and change.reason else None
        options.append(PlanOption(plan, change.action.value, why))
    return options


@bp.get("/apps/<int:app_id>/billing")
@login_required
def billing(app_id: int):
    """The app's plan, its state (trial, renewal, scheduled change, cancellation), card and plan choices."""
    # The page shows the live subscription or, with none, how the last one ended: the app's subscriptions
    # (newest first), read with the app, give both; at most one is live (a partial unique index).
    app = get_app_or_404(app_id, with_subscriptions=True)
    plans = offered_plans(db.session)
    live = next((sub for sub in app.subscriptions if sub.is_live), None)
    attention = billing_attention(app) if live and live.status.in_dunning else None  # the banner's read
    return render_template(
        "subscriptions/billing.html", app=app, sub=live, last=app.current_subscription,
        options=plan_options(plans, live), plan_features=plan_features, attempt=new_attempt(),
        open_invoice=attention["invoice"] if attention else None)


def _back(app: App):
    return redirect(url_for("subscriptions.billing", app_id=app.id))


def _plan_or_back(app: App, code: Optional[str]) -> Optional[KernelPlan]:
    plan = plan_by_code(db.session, code) if code else None
    if plan is None:
        flash(_("Choose one of the plans below."), "error")
    return plan


def _gateway_failed(error: GatewayError, app: App):
    """Roll back whatever the request started and tell the owner why nothing happened."""
    db.session.rollback()
    if isinstance(error, CardDeclined):
        reason = DECLINE_REASONS.get(error.decline_code or "")
        if reason:
            flash(_("Your card was declined (%(reason)s). Nothing was changed; update your card and try again.",
                    reason=reason), "error")
        else:
            flash(_("Your card was declined. Nothing was changed; update your card and try again."), "error")
    elif isinstance(error, GatewayUnavailable):
        log.warning("gateway unavailable for app %s: %s", app.id, error.message)
        flash(str(UNAVAILABLE), "error")
    else:
        log.error("gateway refused a request for app %s: %s (%s)", app.id, error.message, error.code)
        flash(str(STRIPE_REFUSED), "error")
    return _back(app)


def _refused(error: Refused, app: App):
    # A refusal writes only facts worth keeping (an alert, a checkout found paid): keep them.
    db.session.commit()
    flash(refusal_message(error), "warning" if error.code != "proration_mismatch" else "error")
    return _back(app)


# Every action on an app's plan fails the same two ways; the views leave both to these handlers.
@bp.errorhandler(Refused)
def _on_refused(error: Refused):
    return _refused(error, get_app_or_404(request.view_args["app_id"]))


@bp.errorhandler(GatewayError)
def _on_gateway_error(error: GatewayError):
    db.session.rollback()
    return _gateway_failed(error, get_app_or_404(request.view_args["app_id"]))


# ---------------------------------------------------------------- checkout


@bp.post("/apps/<int:app_id>/billing/checkout")
@login_required
def checkout(app_id: int):
    """Open Stripe Checkout for the chosen plan and send the browser there."""
    app = get_app_or_404(app_id)
    plan = _plan_or_back(app, request.form.get("plan"))
    if plan is None:
        return _back(app)
    attempt = attempt_from(request.form.get("attempt"))
    local = start_subscription_checkout(db.session, gateway(), app, plan, origin=request_origin(),
                                        success_url=success_url(), cancel_url=cancel_url(app), attempt=attempt,
                                        locale=str(get_locale()))
    url = local.url
    db.session.commit()
    return redirect(url, code=303)


@bp.get("/billing/success")
@login_required
def checkout_success():
    """Back from Checkout: ask Stripe how the session ended and apply it (harmless when reloaded)."""
    session_id = request.args.get("session_id", "")
    local = db.session.scalar(select(KernelCheckoutSession).where(KernelCheckoutSession.stripe_session_id ==
                                                                  session_id)) if session_id else None
    if local is None:
        abort(404)
    app = get_app_or_404(local.app_id)
    mode, plan_name = local.mode, local.plan.name if local.plan else ""
    try:
        result = complete_checkout_outside_transaction(db.session, gateway(), session_id, origin=request_origin(),
                                                       app_id=app.id, smtp_configured=smtp_configured())
        db.session.commit()
    except GatewayError as error:
        db.session.rollback()
        log.warning("could not confirm checkout %s: %s", session_id, error.message)
        flash(str(NOT_CONFIRMED), "warning")
        return _back(app)
    if result.is_complete:
        if mode == "setup":
            flash(_("Your new card is saved and will be used for the next payments."), "success")
        else:
            live = live_subscription(db.session, app)
            if live is None or live.plan_id != local.plan_id:
                # An old success URL reopened after the plan changed again: say what holds now.
                flash(_("This checkout was completed earlier. Your app is now on %(plan)s.",
                        plan=display_plan_name(live.plan if live else None)), "info")
            elif live.status == SubscriptionStatus.TRIALING:
                flash(_("Your %(plan)s trial has started.", plan=plan_name), "success")
            else:
                flash(_("Thank you! Your app is now on %(plan)s.", plan=plan_name), "success")
    elif result.remote is not None and result.remote.status == "expired":
        flash(_("This checkout has expired and nothing was charged."), "warning")
    else:
        flash(_("The payment is not complete yet."), "warning")
    return _back(app)


@bp.get("/billing/cancel")
@login_required
def checkout_canceled():
    """Back from Checkout without paying: nothing changed."""
    app_id = request.args.get("app_id", type=int)
    if app_id is None:
        return redirect(url_for("dashboard.index"))
    app = get_app_or_404(app_id)
    flash(_("Checkout was canceled. Nothing was charged and your plan did not change."), "info")
    return _back(app)


@bp.post("/apps/<int:app_id>/billing/payment-method")
@login_required
def update_payment_method(app_id: int):
    """Save a new card through Checkout in setup mode (nothing is charged)."""
    app = get_app_or_404(app_id)
    attempt = attempt_from(request.form.get("attempt"))
    local = start_payment_method_update(db.session, gateway(), app, origin=request_origin(),
                                        success_url=success_url(), cancel_url=cancel_url(app), attempt=attempt,
                                        locale=str(get_locale()))
    url = local.url
    db.session.commit()
    return redirect(url, code=303)


# ---------------------------------------------------------------- upgrade


@bp.get("/apps/<int:app_id>/billing/upgrade")
@login_required
def upgrade_preview(app_id: int):
    """The exact amount an upgrade charges now and from the next renewal, to confirm."""
    app = get_app_or_404(app_id)
    plan = _plan_or_back(app, request.args.get("plan"))
    if plan is None:
        return _back(app)
    preview = preview_upgrade(db.session, gateway(), app, plan)
    db.session.commit()
    return render_template("subscriptions/upgrade.html", app=app, preview=preview, attempt=new_attempt(),
                           sub=live_subscription(db.session, app))


@bp.post("/apps/<int:app_id>/billing/upgrade")
@login_required
def upgrade_confirm(app_id: int):
    """Upgrade now: the previewed proration is invoiced and charged, the new plan applies at once.

    The charge is recorded (key, who asked) and committed before Stripe is called
    (``billing.charges``): a lost answer is "being confirmed", never "nothing was charged".
    """
    app = get_app_or_404(app_id)
    plan = _plan_or_back(app, request.form.get("plan"))
    if plan is None:
        return _back(app)
    attempt = attempt_from(request.form.get("attempt"))
    proration_date = request.form.get("proration_date", type=int)
    if proration_date is None:
        abort(400, description="missing proration_date")
    origin = request_origin()
    # One action on the app's billing at a time, claimed before Stripe hears of it (billing/actions.py): a second
    # confirmation waits here, then finds the upgrade done.
    with owner_action(db.session, app.id, "upgrade", origin):
        return _upgrade(app, plan, attempt, proration_date, origin)


def _upgrade(app: App, plan: KernelPlan, attempt: str, proration_date: int, origin):
    live = live_subscription(db.session, app)
    charge = None
    if live is not None and live.plan.stripe_price_id and plan.stripe_price_id:
        charge, new = _begin_upgrade_charge(app, live, plan, attempt, proration_date, origin)
        if charge is None or not new:
            return _charge_outcome(app, charge, plan)
    try:
        result = upgrade(db.session, gateway(), app, plan, proration_date=proration_date, attempt=attempt,
                         origin=origin, smtp_configured=smtp_configured())
    except StalePreview as error:
        db.session.rollback()
        _settle_refused(charge, error.code, origin)
        flash(refusal_message(error), "info")
        return redirect(url_for("subscriptions.upgrade_preview", app_id=app.id, plan=plan.code))
    except Refused as error:
        if charge is not None:  # the refusal's own facts (an alert) are committed with it
            charges.settle(db.session, charge, ChargeStatus.FAILED, origin, error=f"refused: {error.code}")
        raise
    except ChargeOutcomeUnknown as error:
        db.session.rollback()
        if charge is not None:
            charges.mark_unknown(db.session, charge, error, origin)
            db.session.commit()
        return _charge_outcome(app, charge, plan)
    except GatewayError as error:
        db.session.rollback()
        _settle_refused(charge, error.code or type(error).__name__, origin)
        raise
    if charge is not None:
        charge.stripe_invoice_id = result.invoice.stripe_invoice_id if result.invoice else None
        charges.settle(db.session, charge, ChargeStatus.SUCCEEDED, origin,
                       amount=result.charged.amount, currency=result.charged.currency)
    db.session.commit()
    flash(_("Your app is now on %(plan)s. %(amount)s was charged.", plan=plan.name,
            amount=money(result.charged.amount, result.charged.currency)), "success")
    return _back(app)


# Another tab's charge in flight is waited for (as the row lock was): about Stripe's read timeout.
CHARGE_IN_FLIGHT_WAIT_SECONDS = 35


def _begin_upgrade_charge(app: App, live: AppSubscription, plan: KernelPlan, attempt: str, proration_date: int,
                          origin) -> tuple[Optional[ChargeAttempt], bool]:
    """Record the upgrade's charge before Stripe hears of it; an earlier charge still in doubt is confirmed first
    (same key again). Returns ``(None, False)`` while that one cannot be confirmed yet."""
    key = upgrade_key(live.stripe_subscription_id, live.plan.stripe_price_id, plan.stripe_price_id, attempt)
    details = {"from_price": live.plan.stripe_price_id, "to_price": plan.stripe_price_id,
               "proration_date": proration_date, "attempt": attempt, "from_plan": live.plan.code, "to_plan": plan.code}
    begin = partial(charges.begin, db.session, app_id=app.id, kind=charges.UPGRADE, key=key,
                    target=live.stripe_subscription_id, origin=origin, details=details)
    try:
        charge, new = begin()
    except charges.ChargeInDoubt as doubt:
        other = charges.wait_while_in_flight(db.session, doubt.attempt, seconds=CHARGE_IN_FLIGHT_WAIT_SECONDS)
        if other.status.is_open and charges.confirm(db.session, gateway(), other, origin).is_open:
            db.session.commit()
            return None, False
        db.session.commit()
        charge, new = begin()
    if not new and charge.status.is_open:  # the same form again: wait for it, or replay its key
        charge = charges.wait_while_in_flight(db.session, charge, seconds=CHARGE_IN_FLIGHT_WAIT_SECONDS)
        if charge.status.is_open:
            charges.confirm(db.session, gateway(), charge, origin)
    db.session.commit()
    return charge, new


def _settle_refused(charge: Optional[ChargeAttempt], reason: str, origin) -> None:
    if charge is not None:
        charges.settle(db.session, charge, ChargeStatus.FAILED, origin, error=f"not charged: {reason}")
        db.session.commit()


def _charge_outcome(app: App, charge: Optional[ChargeAttempt], plan: KernelPlan):
    """What the owner reads about a charge recorded earlier (a resubmitted form, an answer lost on the way)."""
    if charge is None or charge.status.is_open:
        flash(str(CONFIRMING), "warning")
    elif charge.status == ChargeStatus.SUCCEEDED:
        flash(_("Your app is now on %(plan)s. %(amount)s was charged.", plan=plan.name,
                amount=money(charge.amount or 0, charge.currency or plan.currency)), "success")
    else:
        flash(_("This payment did not go through, so nothing was charged. Please review the plan and try again."),
              "error")
    return _back(app)


# ---------------------------------------------------------------- downgrade


@bp.get("/apps/<int:app_id>/billing/downgrade")
@login_required
def downgrade_confirm_page(app_id: int):
    """Confirm a downgrade: the current plan stays until the period ends."""
    app = get_app_or_404(app_id)
    plan = _plan_or_back(app, request.args.get("plan"))
    live = live_subscription(db.session, app)
    if plan is None or live is None:
        if live is None:
            flash(refusal_message(Refused("no_subscription", "")), "warning")
        return _back(app)
    return render_template("subscriptions/downgrade.html", app=app, sub=live, plan=plan, attempt=new_attempt())


@bp.post("/apps/<int:app_id>/billing/downgrade")
@login_required
def downgrade(app_id: int):
    """Schedule the downgrade for the end of the period."""
    app = get_app_or_404(app_id)
    plan = _plan_or_back(app, request.form.get("plan"))
    if plan is None:
        return _back(app)
    attempt = attempt_from(request.form.get("attempt"))
    row = schedule_downgrade(db.session, gateway(), app, plan, attempt=attempt, origin=request_origin(),
                             smtp_configured=smtp_configured())
    when = row.scheduled_change_at or row.current_period_end
    db.session.commit()
    flash(_("Downgrade scheduled: %(plan)s from %(date)s. Your current plan stays until then.", plan=plan.name,
            date=format_date(when)), "success")
    return _back(app)


@bp.post("/apps/<int:app_id>/billing/downgrade/undo")
@login_required
def downgrade_undo(app_id: int):
    """Keep the current plan: drop the scheduled downgrade."""
    app = get_app_or_404(app_id)
    changed = undo_downgrade(db.session, gateway(), app, origin=request_origin(), smtp_configured=smtp_configured())
    db.session.commit()
    if changed:
        flash(_("The scheduled downgrade was undone. Your plan stays as it is."), "success")
    else:
        flash(_("No plan change was scheduled."), "info")
    return _back(app)


# ---------------------------------------------------------------- cancel and resume


@bp.get("/apps/<int:app_id>/billing/cancel")
@login_required
def cancel_confirm_page(app_id: int):
    """Confirm a cancellation at the end of the paid period."""
    app = get_app_or_404(app_id)
    live = live_subscription(db.session, app)
    if live is None:
        flash(refusal_message(Refused("no_subscription", "")), "warning")
        return _back(app)
    return render_template("subscriptions/cancel.html", app=app, sub=live, reasons=CANCEL_REASONS)


@bp.post("/apps/<int:app_id>/billing/cancel")
@login_required
def cancel(app_id: int):
    """Cancel at the period end; access is kept until then."""
    app = get_app_or_404(app_id)
    changed = cancel_at_period_end(db.session, gateway(), app, origin=request_origin(),
                                   smtp_configured=smtp_configured())
    live = live_subscription(db.session, app)
    until = live.current_period_end if live else None
    reason = request.form.get("reason")
    if changed and live is not None and reason in CANCEL_REASONS:
        audit.record(db.session, action="subscription.cancel_reason", object_type="subscription",
                     object_id=live.stripe_subscription_id, app_id=app.id, after={"reason": reason},
                     origin=request_origin())
    db.session.commit()
    if changed:
        flash(_("Your subscription is canceled. You keep access until %(date)s, and you can resume it until then.",
                date=format_date(until)), "success")
    else:
        flash(_("The subscription was already set to end."), "info")
    return _back(app)


@bp.post("/apps/<int:app_id>/billing/resume")
@login_required
def resume_subscription(app_id: int):
    """Undo a cancellation before the period ends."""
    app = get_app_or_404(app_id)
    changed = resume(db.session, gateway(), app, origin=request_origin(), smtp_configured=smtp_configured())
    db.session.commit()
    if changed:
        flash(_("Welcome back! Your subscription will renew as usual."), "success")
    else:
        flash(_("The subscription was not set to end."), "info")
    return _back(app)

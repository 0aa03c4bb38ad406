"""What an app owner does to their plan, as a service: no Flask, just a session, a gateway and an app.

Each flow checks the rules first (raising ``Refused`` before anything is written),
then calls Stripe through the gateway, then brings our rows up to date through
``billing.sync`` so the page shows the truth at once instead of waiting for the
webhook, and writes an audit row naming the action.

No transaction stays open while Stripe is called (``billing/actions.py``): each action
claims the app (``owner_action``, committed at once), checks the rules in a short
transaction, ends it, calls Stripe, and writes the result in another short transaction
with the claim's release. The actions that claim commit themselves:

* on success, the result;
* on ``Refused``, the facts a refusal keeps (the alert of a proration mismatch, a
  checkout found already paid) and nothing else;
* on a ``GatewayError`` (declined card, Stripe unavailable), nothing: the claim is
  released, and every Stripe write carries an idempotency key, so trying again is safe.

``upgrade`` is claimed by its caller, which records the charge first (``billing.charges``).

Double submits: a checkout's ``attempt`` (a token rendered into the form) is its
idempotency key, so two clicks open one session; opening a session expires the
app's other open ones, so two tabs can never both pay. A second confirmation of a
plan change waits on the claim and re-checks our rows, so it finds the change
already made.
"""
from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from billing import audit, clock, control, metrics
from billing.actions import Refused, end_transaction, owner_action
from billing.webhooks.prefetch import asking
from billing.audit import Origin
from billing.billing_details import details_of, stripe_address, stripe_tax_id
from billing.checkout import complete_checkout, fetch_checkout
from billing.customers import preferred_locales, stripe_locale
from billing.errors import ChargeOutcomeUnknown, GatewayUnavailable, InvalidRequest
from billing.gateway import Invoice, StripeGateway, Subscription, SubscriptionState
from billing.models import (
    AlertSeverity,
    App,
    AppSubscription,
    AuditLog,
    CheckoutMode,
    CheckoutStatus,
    KernelCheckoutSession,
    KernelInvoice,
    KernelPlan,
)
from billing.money import Money
from billing.notifications import NoticeKind, iso, notify_owners
from billing.plans import paid_plans
from billing.proration import ProrationError, prorate
from billing.states import SubscriptionStatus
from billing.sync import sync_invoice, sync_subscription

log = logging.getLogger(__name__)

# How long the amount shown on an upgrade preview may be charged: Stripe prorates to
# the second, so an older preview no longer describes what the change would cost.
PREVIEW_VALID_FOR = timedelta(minutes=15)
# The portal's clock follows the gateway's in whole seconds; a preview stamped a
# moment "ahead" of a later reading is clock resolution, not a forged date.
CLOCK_TOLERANCE = timedelta(seconds=5)


class ProrationMismatch(Refused):
    """Our proration and the gateway's preview disagree: the change is refused and an alert raised."""


class StalePreview(Refused):
    """The confirmed preview is too old, from the future or from another period: show a fresh one."""


# ---------------------------------------------------------------- lookups


def live_subscription(session: Session, app: App, *, lock: bool = False) -> Optional[AppSubscription]:
    """The app's subscription that is not over (at most one, by a partial unique index), or None.

    ``lock`` takes the row lock (``SELECT ... FOR UPDATE``; on SQLite the IMMEDIATE
    transaction already serializes writers) and reloads the row, so a second
    confirmation waiting on the lock sees what the first one changed.
    """
    query = select(AppSubscription).where(AppSubscription.app_id == app.id, AppSubscription.is_live)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


# Statuses that count towards monthly recurring revenue: paying ones; trials add nothing yet.
MRR_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


def monthly_amount(plan: KernelPlan) -> int:
    """The plan's price per month in minor units (a yearly price spread over twelve months)."""
    if plan.interval == "year":
        return (plan.amount + 6) // 12
    return plan.amount


def monthly_amount_sql(plan) -> Any:
    """``monthly_amount`` as a SQL expression over ``plan`` (a KernelPlan, or an alias of it), for totals."""
    return case((plan.interval == "year", (plan.amount + 6) // 12), else_=plan.amount)


# ---------------------------------------------------------------- which plan change is allowed


class PlanAction(enum.StrEnum):
    """What choosing a plan would do for an app, as its plan card offers it."""

    CURRENT = "current"  # the app is on it
    SUBSCRIBE = "subscribe"  # no live subscription: Checkout
    UPGRADE = "upgrade"  # a higher paid plan, now, prorated
    DOWNGRADE = "downgrade"  # a lower paid plan, from the period end
    SCHEDULED = "scheduled"  # the downgrade already waiting for the period end
    CANCEL = "cancel"  # Free: the subscription ends at the period end
    ENDING = "ending"  # Free, already waiting for the period end
    BLOCKED = "blocked"  # refused for now; ``reason`` says why


@dataclass(frozen=True)
class PlanChange:
    action: PlanAction
    reason: Optional[str] = None  # a ``Refused`` code when the plan is not available


CHANGEABLE_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING)


def plan_change(live: Optional[AppSubscription], plan: KernelPlan) -> PlanChange:
    """The one rule for what moving ``live`` (None: on Free) to ``plan`` is, or why it is refused.

    The billing page draws its buttons from it and the services below refuse with
    its reason, so a button and a refusal can never disagree.
    """
    buyable = plan.active and bool(plan.stripe_price_id) and not plan.is_free
    if live is None:
        if plan.is_free:
            return PlanChange(PlanAction.CURRENT)
        return PlanChange(PlanAction.SUBSCRIBE) if buyable else PlanChange(PlanAction.BLOCKED, "plan_unavailable")
    if plan.id == live.plan_id:
        return PlanChange(PlanAction.CURRENT, "already_on_plan")
    if plan.is_free:
        return PlanChange(PlanAction.ENDING if live.cancel_at_period_end else PlanAction.CANCEL)
    blocked = _unchangeable_reason(live)
    if blocked:
        return PlanChange(PlanAction.BLOCKED, blocked)
    if not buyable:
        return PlanChange(PlanAction.BLOCKED, "plan_unavailable")
    if plan.rank > live.plan.rank:
        if live.stripe_schedule_id:
            return PlanChange(PlanAction.BLOCKED, "change_scheduled")
        return PlanChange(PlanAction.UPGRADE)
    if plan.rank == live.plan.rank:
        return PlanChange(PlanAction.BLOCKED, "not_a_downgrade")
    if live.scheduled_plan_id == plan.id:
        return PlanChange(PlanAction.SCHEDULED)
    if live.cancel_at_period_end:
        return PlanChange(PlanAction.BLOCKED, "cancel_pending")
    return PlanChange(PlanAction.DOWNGRADE)


def _unchangeable_reason(row: AppSubscription) -> Optional[str]:
    if row.status.in_dunning:
        return "past_due"
    if row.status not in CHANGEABLE_STATUSES:
        return "not_changeable"
    return None


def _require(row: Optional[AppSubscription], plan: KernelPlan, *allowed: PlanAction,
             otherwise: str) -> tuple[AppSubscription, PlanAction]:
    """Refuse unless ``plan_change`` allows one of ``allowed``; ``otherwise`` names a refusal the rule gives no reason for."""
    if row is None:
        raise Refused("no_subscription", "no live subscription")
    change = plan_change(row, plan)
    if change.action not in allowed:
        reason = change.reason or otherwise
        raise Refused(reason, f"{row.plan.code} -> {plan.code} refused: {reason}")
    return row, change.action


# ---------------------------------------------------------------- checkout


def _customer_to_create(session: Session, app: App) -> Optional[dict[str, Any]]:
    """What creating the app's Stripe customer sends (its idempotency key is named by it), or None when it has one."""
    if app.stripe_customer_id:
        return None
    email = app.billing_email or next((owner.email for owner in app.owners), None)
    details = details_of(session, app.id)
    return {"app_id": app.id, "email": email, "name": details.legal_name if details else app.name,
            "preferred_locales": preferred_locales(app),
            "address": stripe_address(details) if details else None, "tax_id": stripe_tax_id(details)}


def _record_customer(session: Session, app_id: int, customer_id: str, origin: Origin) -> None:
    """Keep the customer just made in Stripe (with the billing details it was sent, when saved)."""
    app = session.get(App, app_id, populate_existing=True)
    if app is None or app.stripe_customer_id:
        return
    details = details_of(session, app_id)
    if details is not None:
        details.synced_at = clock.now()
    app.stripe_customer_id = customer_id
    audit.record(session, action="customer.created", object_type="app", object_id=app_id, app_id=app_id,
                 before={"stripe_customer_id": None}, after={"stripe_customer_id": customer_id}, origin=origin)


def _open_subscription_sessions(session: Session, app_id: int) -> list[str]:
    return list(session.scalars(select(KernelCheckoutSession.stripe_session_id).where(
        KernelCheckoutSession.app_id == app_id, KernelCheckoutSession.mode == CheckoutMode.SUBSCRIPTION,
        KernelCheckoutSession.status == CheckoutStatus.OPEN)))


def start_subscription_checkout(session: Session, gateway: StripeGateway, app: App, plan: KernelPlan, *,
                                origin: Origin, success_url: str, cancel_url: str,
                                attempt: str, locale: Optional[str] = None) -> KernelCheckoutSession:
    """Open a Checkout Session that subscribes ``app`` to ``plan``; returns our record (its ``url`` is Stripe's page).

    ``success_url`` should carry ``{CHECKOUT_SESSION_ID}`` for Stripe to fill in. One
    checkout at a time per app (``owner_action``); the app's other open sessions are
    expired, so only the newest can be paid. Commits.
    """
    app_id = app.id
    with owner_action(session, app_id, "checkout", origin):
        control.refuse_if_paused(session, app_id)
        if plan_change(None, plan).action != PlanAction.SUBSCRIBE:
            raise Refused("plan_unavailable", f"plan {plan.code} cannot be bought")
        current = live_subscription(session, app)
        if current is not None:
            raise Refused("live_subscription", f"app {app_id} already has subscription {current.stripe_subscription_id}")
        new_customer, customer_id = _customer_to_create(session, app), app.stripe_customer_id
        plan_id, price_id, plan_code, trial_days = plan.id, plan.stripe_price_id, plan.code, plan.trial_days or 0
        others = _open_subscription_sessions(session, app_id)
        end_transaction(session)

        if new_customer is not None:
            customer_id = gateway.create_customer(**new_customer).id
        assert customer_id is not None and price_id is not None
        remote = gateway.create_subscription_checkout(
            customer_id=customer_id, price_id=price_id, app_id=app_id, plan_code=plan_code,
            success_url=success_url, cancel_url=cancel_url, attempt=attempt, trial_days=trial_days,
            locale=stripe_locale(locale))
        expired, paid = _expire_others(gateway, [other for other in others if other != remote.id])
        paid_checkout = None
        if paid is not None:
            # Paid in another tab a moment ago: that one is completed and this new one expired instead.
            paid_checkout = fetch_checkout(gateway, paid, mode=CheckoutMode.SUBSCRIPTION, customer_id=customer_id,
                                           live_subscription_id=None)
            gateway.expire_checkout_session(remote.id)

        if new_customer is not None:
            _record_customer(session, app_id, customer_id, origin)
        local = session.scalar(select(KernelCheckoutSession).where(KernelCheckoutSession.stripe_session_id == remote.id))
        if local is not None:  # the same attempt again (a double click): Stripe replayed the first session
            return local
        local = KernelCheckoutSession(app_id=app_id, stripe_session_id=remote.id, mode=CheckoutMode.SUBSCRIPTION,
                                      plan_id=plan_id, url=remote.url, created_by_id=origin.actor_user_id,
                                      status=CheckoutStatus.OPEN)
        session.add(local)
        session.flush()
        for other in session.scalars(select(KernelCheckoutSession).where(
                KernelCheckoutSession.stripe_session_id.in_(expired),
                KernelCheckoutSession.status == CheckoutStatus.OPEN)):
            _mark_expired(session, other, origin)
        audit.record(session, action="checkout.subscription.opened", object_type="checkout_session",
                     object_id=remote.id, app_id=app_id, before=None,
                     after={"plan": plan_code, "trial_days": trial_days}, origin=origin)
        metrics.checkout(plan_code, "subscription", "started")
        if paid is not None:
            complete_checkout(session, gateway, paid, origin=origin, app_id=app_id, fetched=paid_checkout)
            _mark_expired(session, local, origin)
            raise Refused("live_subscription", f"checkout {paid} was already paid")
        return local


def _expire_others(gateway: StripeGateway, session_ids: list[str]) -> tuple[list[str], Optional[str]]:
    """Expire these open sessions in Stripe; returns those now expired, and one found paid already (then stops)."""
    expired: list[str] = []
    for session_id in session_ids:
        try:
            gateway.expire_checkout_session(session_id)
            expired.append(session_id)
            continue
        except InvalidRequest:
            remote = gateway.retrieve_checkout_session(session_id)
        if remote.status == "expired":
            expired.append(session_id)
        elif remote.is_complete:
            return expired, session_id
    return expired, None


def _mark_expired(session: Session, local: KernelCheckoutSession, origin: Origin) -> None:
    local.status = CheckoutStatus.EXPIRED
    audit.record(session, action=f"checkout.{local.mode}.expired", object_type="checkout_session",
                 object_id=local.stripe_session_id, app_id=local.app_id, before={"status": "open"},
                 after={"status": "expired"}, origin=origin)


def billing_currency(session: Session, app: App) -> str:
    """The currency ``app`` is billed in: its live plan's, else the catalogue's (the paid plans')."""
    live = live_subscription(session, app)
    if live is not None:
        return live.plan.currency
    return paid_plans(session)[0].currency


def start_payment_method_update(session: Session, gateway: StripeGateway, app: App, *, origin: Origin,
                                success_url: str, cancel_url: str, attempt: str, currency: str | None = None,
                                submit_message: str | None = None,
                                locale: Optional[str] = None) -> KernelCheckoutSession:
    """Open a Checkout Session in setup mode: the owner saves a new card, nothing is charged. Commits.

    The card is set up for ``currency`` (an open invoice's), by default the currency the app is billed in.
    ``complete_checkout`` makes the saved card the default of the customer and of the
    live subscription when the owner comes back.
    """
    app_id = app.id
    with owner_action(session, app_id, "card", origin):
        control.refuse_if_paused(session, app_id)
        new_customer, customer_id = _customer_to_create(session, app), app.stripe_customer_id
        currency = currency or billing_currency(session, app)
        end_transaction(session)

        if new_customer is not None:
            customer_id = gateway.create_customer(**new_customer).id
        assert customer_id is not None
        remote = gateway.create_setup_checkout(customer_id=customer_id, app_id=app_id, currency=currency,
                                               success_url=success_url, cancel_url=cancel_url, attempt=attempt,
                                               submit_message=submit_message, locale=stripe_locale(locale))

        if new_customer is not None:
            _record_customer(session, app_id, customer_id, origin)
        local = session.scalar(select(KernelCheckoutSession).where(KernelCheckoutSession.stripe_session_id == remote.id))
        if local is None:
            local = KernelCheckoutSession(app_id=app_id, stripe_session_id=remote.id, mode=CheckoutMode.SETUP,
                                          url=remote.url, created_by_id=origin.actor_user_id, status=CheckoutStatus.OPEN)
            session.add(local)
            audit.record(session, action="checkout.setup.opened", object_type="checkout_session", object_id=remote.id,
                         app_id=app_id, before=None, after={"mode": "setup"}, origin=origin)
            metrics.checkout(None, "setup", "started")
        return local


# ---------------------------------------------------------------- upgrade


@dataclass(frozen=True)
class UpgradePreview:
    """What an upgrade costs now and from the next renewal, agreed by our proration and the gateway's."""

    from_plan: KernelPlan
    to_plan: KernelPlan
    credit: Money  # negative: unused time on the current plan
    charge: Money  # remaining time on the new plan
    amount_due: Money  # charged now (the proration, less any customer credit Stripe holds)
    next_amount: Money  # the new plan's full price, charged at each renewal
    next_renewal: Optional[datetime]
    proration_date: int
    trialing: bool = False

    @property
    def prorated_total(self) -> Money:
        return self.credit + self.charge


@dataclass(frozen=True)
class UpgradeResult:
    subscription: AppSubscription
    invoice: Optional[KernelInvoice]
    charged: Money


@dataclass(frozen=True)
class _Change:
    """What a plan change needs to know of our rows, read before the transaction ends (Stripe is asked after)."""

    app_id: int
    subscription_id: str
    from_plan: KernelPlan  # for the page: loaded again when read
    to_plan: KernelPlan
    from_code: str
    to_code: str
    from_price_id: Optional[str]
    to_price_id: str
    from_price: Money
    to_price: Money

    @classmethod
    def of(cls, row: AppSubscription, to_plan: KernelPlan) -> "_Change":
        assert to_plan.stripe_price_id is not None
        return cls(app_id=row.app_id, subscription_id=row.stripe_subscription_id, from_plan=row.plan, to_plan=to_plan,
                   from_code=row.plan.code, to_code=to_plan.code, from_price_id=row.plan.stripe_price_id,
                   to_price_id=to_plan.stripe_price_id, from_price=row.plan.price, to_price=to_plan.price)


def preview_upgrade(session: Session, gateway: StripeGateway, app: App, to_plan: KernelPlan, *,
                    at: Optional[datetime] = None) -> UpgradePreview:
    """The exact amount an upgrade to ``to_plan`` charges now, checked against the gateway's preview.

    Ends the session's transaction before asking Stripe; a mismatch's alert is written after (the caller commits)."""
    control.refuse_if_paused(session, app.id)
    row, _ = _require(live_subscription(session, app), to_plan, PlanAction.UPGRADE, otherwise="not_an_upgrade")
    change = _Change.of(row, to_plan)
    end_transaction(session)
    if at is None:
        clock.refresh()
        at = clock.now()
    remote = gateway.retrieve_subscription(change.subscription_id)
    _check_remote_plan(change, remote)
    return _verified_preview(session, gateway, change, remote, int(at.timestamp()))


def upgrade(session: Session, gateway: StripeGateway, app: App, to_plan: KernelPlan, *, proration_date: int,
            attempt: str, origin: Origin, smtp_configured: bool = False) -> UpgradeResult:
    """Switch to a higher plan now: the proration of the preview at ``proration_date`` is invoiced and charged.

    The caller holds the app's claim (``billing.actions.owner_action``) and has recorded the charge, so
    a second confirmation (another tab, a double click) runs after this one and finds the upgrade done.
    The rules are checked, the transaction ended, Stripe asked and charged, then the result written
    (the caller commits). A declined card raises ``CardDeclined`` and changes nothing, in Stripe
    (``error_if_incomplete``) or here.
    """
    control.refuse_if_paused(session, app.id)
    row, _ = _require(live_subscription(session, app), to_plan, PlanAction.UPGRADE, otherwise="not_an_upgrade")
    change = _Change.of(row, to_plan)
    end_transaction(session)
    clock.refresh()
    now = clock.now()
    remote = gateway.retrieve_subscription(change.subscription_id)
    _check_remote_plan(change, remote)
    _check_proration_date(proration_date, now, remote)
    preview = _verified_preview(session, gateway, change, remote, proration_date)
    asked_ns = asking(gateway)
    try:
        full, invoice = gateway.change_price_now_in_full(remote, change.to_price_id, proration_date=proration_date,
                                                         attempt=attempt)
    except GatewayUnavailable as error:
        # The charging request may have reached Stripe: from here on, "nothing was charged" is not known.
        raise ChargeOutcomeUnknown(error.message, code=error.code, http_status=error.http_status,
                                   request_id=error.request_id) from error

    observed_at = int(now.timestamp())
    row = _apply(session, full, observed_at, origin, asked_ns)
    invoice_row = _sync_invoice(session, invoice, observed_at, origin, asked_ns)
    charged = Money(invoice.amount_paid if invoice else 0, preview.amount_due.currency)
    audit.record(session, action="subscription.upgraded", object_type="app_subscription",
                 object_id=change.subscription_id, app_id=change.app_id,
                 before={"plan": change.from_code},
                 after={"plan": change.to_code, "charged": charged.amount, "currency": charged.currency,
                        "invoice": invoice.id if invoice else None, "proration_date": proration_date},
                 origin=origin)
    notify_owners(session, row.app, kind=NoticeKind.UPGRADED, smtp_configured=smtp_configured,
                  data={"from_plan": change.from_code, "plan": change.to_code, "amount": charged.amount,
                        "currency": charged.currency, "invoice": invoice_row.number if invoice_row else None,
                        "renews_at": iso(row.current_period_end)},
                  dedupe_key=f"subscription:{change.subscription_id}:upgraded:{change.to_code}:{proration_date}")
    log.info("app %s upgraded %s -> %s, charged %s", change.app_id, change.from_code, change.to_code, charged)
    return UpgradeResult(row, invoice_row, charged)


def _apply(session: Session, full: SubscriptionState, observed_at: int, origin: Origin,
           asked_ns: Optional[int]) -> AppSubscription:
    """Write what Stripe answered after a change, asked at ``asked_ns`` (its watermark, and that moment on a
    same-second tie, keep it from undoing a newer event); our row."""
    remote, schedule, card = full
    result = sync_subscription(session, remote, observed_at=observed_at, origin=origin, schedule=schedule, card=card,
                               asked_ns=asked_ns)
    return result.row


def _check_remote_plan(change: _Change, remote: Subscription) -> None:
    # Our row may lag behind Stripe (a change made elsewhere, a webhook not yet processed).
    if remote.price_id != change.from_price_id:
        raise Refused("changed_meanwhile", f"Stripe has {remote.price_id}, we have {change.from_price_id}")


def _check_proration_date(proration_date: int, now: datetime, remote: Subscription) -> None:
    moment = datetime.fromtimestamp(proration_date, tz=timezone.utc)
    if moment > now + CLOCK_TOLERANCE:
        raise StalePreview("stale_preview", "the preview is dated in the future")
    if moment < now - PREVIEW_VALID_FOR:
        raise StalePreview("stale_preview", "the preview is too old")
    start, end = remote.current_period_start, remote.current_period_end
    if start is None or end is None or not start <= moment < end:
        raise StalePreview("stale_preview", "the preview belongs to another billing period")


def _verified_preview(session: Session, gateway: StripeGateway, change: _Change, remote: Subscription,
                      proration_date: int) -> UpgradePreview:
    """Our proration and the gateway's preview for the same ``proration_date``; refused if they differ by a centavo."""
    at = datetime.fromtimestamp(proration_date, tz=timezone.utc)
    trialing = remote.status == SubscriptionStatus.TRIALING
    if remote.current_period_start is None or remote.current_period_end is None:
        raise Refused("not_changeable", f"Stripe reports no current period for {remote.id}")
    try:
        local = prorate(change.from_price, change.to_price, remote.current_period_start, remote.current_period_end, at)
    except ProrationError as error:
        raise StalePreview("stale_preview", str(error)) from error
    expected_credit, expected_charge = local.credit, local.charge
    if trialing:  # Stripe prorates nothing during a trial: the trial simply continues on the new plan
        expected_credit = expected_charge = Money(0, change.to_price.currency)
    preview = gateway.preview_price_change(remote, change.to_price_id, proration_date)
    expected = (expected_credit + expected_charge).amount
    if preview.proration_total != expected or preview.currency != change.to_price.currency:
        _raise_mismatch(session, change, proration_date, expected, preview)
    return UpgradePreview(
        from_plan=change.from_plan, to_plan=change.to_plan, credit=expected_credit, charge=expected_charge,
        amount_due=Money(preview.amount_due, preview.currency), next_amount=change.to_price,
        next_renewal=remote.current_period_end, proration_date=proration_date, trialing=trialing)


def _raise_mismatch(session: Session, change: _Change, proration_date: int, expected: int, preview: Invoice) -> None:
    details = {"subscription": change.subscription_id, "from": change.from_code, "to": change.to_code,
               "proration_date": proration_date, "expected": expected, "gateway": preview.proration_total,
               "currency": preview.currency}
    audit.raise_alert(
        session, kind="proration_mismatch", severity=AlertSeverity.CRITICAL, app_id=change.app_id,
        message=(f"Upgrade {change.from_code} -> {change.to_code} refused: our proration says {expected}, "
                 f"Stripe's preview says {preview.proration_total} ({preview.currency} minor units)."),
        details=details, dedupe_key=f"proration_mismatch:{change.subscription_id}:{change.to_code}:{proration_date}")
    log.error("proration mismatch for app %s: %s", change.app_id, details)
    raise ProrationMismatch("proration_mismatch", "our proration and the gateway's preview disagree", **details)


def _sync_invoice(session: Session, invoice: Optional[Invoice], observed_at: int,
                  origin: Origin, asked_ns: Optional[int]) -> Optional[KernelInvoice]:
    if invoice is None or invoice.id is None:
        return None
    return sync_invoice(session, invoice, observed_at=observed_at, origin=origin, asked_ns=asked_ns).row


# ---------------------------------------------------------------- downgrade


def schedule_downgrade(session: Session, gateway: StripeGateway, app: App, to_plan: KernelPlan, *, attempt: str,
                       origin: Origin, smtp_configured: bool = False) -> AppSubscription:
    """Switch to a lower paid plan at the end of the period; the current plan stays until then. Commits."""
    app_id = app.id
    with owner_action(session, app_id, "downgrade", origin):
        control.refuse_if_paused(session, app_id)
        row, action = _require(live_subscription(session, app), to_plan, PlanAction.DOWNGRADE,
                               PlanAction.SCHEDULED, otherwise="not_a_downgrade")
        if action == PlanAction.SCHEDULED:
            return row  # a second click: already scheduled
        change, before = _Change.of(row, to_plan), _plan_picture(row)
        end_transaction(session)

        remote = gateway.retrieve_subscription(change.subscription_id)
        _check_remote_plan(change, remote)
        asked_ns = asking(gateway)
        full = gateway.schedule_price_change_in_full(remote, change.to_price_id, attempt=attempt)

        row = _apply(session, full, int(clock.now().timestamp()), origin, asked_ns)
        entry = _record(session, row, "subscription.downgrade_scheduled", before, origin)
        _tell_owners(session, row, NoticeKind.DOWNGRADE_SCHEDULED, entry, smtp_configured,
                     from_plan=change.from_code, plan=change.to_code, change_at=iso(row.scheduled_change_at))
        return row


def undo_downgrade(session: Session, gateway: StripeGateway, app: App, *, origin: Origin,
                   smtp_configured: bool = False) -> bool:
    """Drop the scheduled downgrade (release the schedule); returns False when none was scheduled. Commits."""
    app_id = app.id
    with owner_action(session, app_id, "undo_downgrade", origin):
        control.refuse_if_paused(session, app_id)
        row = live_subscription(session, app)
        if row is None:
            raise Refused("no_subscription", f"app {app_id} has no live subscription")
        if not row.stripe_schedule_id:
            return False
        subscription_id, schedule_id, before = row.stripe_subscription_id, row.stripe_schedule_id, _plan_picture(row)
        end_transaction(session)

        _release(gateway, schedule_id)
        asked_ns = asking(gateway)
        full = gateway.retrieve_subscription_in_full(subscription_id)

        row = _apply(session, full, int(clock.now().timestamp()), origin, asked_ns)
        entry = _record(session, row, "subscription.downgrade_undone", before, origin)
        _tell_owners(session, row, NoticeKind.DOWNGRADE_UNDONE, entry, smtp_configured, plan=row.plan.code,
                     dropped_plan=before["scheduled_plan"], renews_at=iso(row.current_period_end))
        return True


def _release(gateway: StripeGateway, schedule_id: str) -> None:
    try:
        gateway.release_schedule(schedule_id)
    except InvalidRequest as error:
        # Already released or completed in Stripe (our row lagged): the sync that follows tells the truth.
        log.info("schedule %s was no longer active: %s", schedule_id, error.message)


# ---------------------------------------------------------------- cancel and resume


def cancel_at_period_end(session: Session, gateway: StripeGateway, app: App, *, origin: Origin,
                         smtp_configured: bool = False) -> bool:
    """End the subscription when the paid period ends (access kept until then); False when already ending.

    A scheduled downgrade is dropped first: the subscription ends instead. Commits.
    """
    app_id = app.id
    with owner_action(session, app_id, "cancel", origin) as claim:
        control.refuse_if_paused(session, app_id)
        row = live_subscription(session, app)
        if row is None or row.status == SubscriptionStatus.INCOMPLETE:
            raise Refused("no_subscription", f"app {app_id} has no subscription to cancel")
        if row.cancel_at_period_end:
            return False
        subscription_id, schedule_id, before = row.stripe_subscription_id, row.stripe_schedule_id, _plan_picture(row)
        end_transaction(session)

        if schedule_id:
            _release(gateway, schedule_id)
        asked_ns = asking(gateway)
        full = gateway.set_cancel_at_period_end_in_full(subscription_id, True, change=f"claim:{claim}")

        row = _apply(session, full, int(clock.now().timestamp()), origin, asked_ns)
        entry = _record(session, row, "subscription.cancel_scheduled", before, origin)
        _tell_owners(session, row, NoticeKind.CANCELED, entry, smtp_configured, plan=row.plan.code,
                     ends_at=iso(row.current_period_end))
        return True


def resume(session: Session, gateway: StripeGateway, app: App, *, origin: Origin,
           smtp_configured: bool = False) -> bool:
    """Undo a cancellation before the period ends; False when nothing was being canceled. Commits."""
    app_id = app.id
    with owner_action(session, app_id, "resume", origin) as claim:
        control.refuse_if_paused(session, app_id)
        row = live_subscription(session, app)
        if row is None:
            raise Refused("no_subscription", f"app {app_id} has no live subscription")
        if not row.cancel_at_period_end:
            return False
        subscription_id, period_end, before = row.stripe_subscription_id, row.current_period_end, _plan_picture(row)
        end_transaction(session)
        clock.refresh()
        if period_end is not None and clock.now() >= period_end:
            raise Refused("period_over", "the period has ended; subscribe again")

        asked_ns = asking(gateway)
        full = gateway.set_cancel_at_period_end_in_full(subscription_id, False, change=f"claim:{claim}")

        row = _apply(session, full, int(clock.now().timestamp()), origin, asked_ns)
        entry = _record(session, row, "subscription.resumed", before, origin)
        _tell_owners(session, row, NoticeKind.RESUMED, entry, smtp_configured, plan=row.plan.code,
                     renews_at=iso(row.current_period_end))
        return True


# ---------------------------------------------------------------- helpers


def _plan_picture(row: AppSubscription) -> dict:
    return {
        "plan": row.plan.code,
        "status": row.status.value,
        "scheduled_plan": row.scheduled_plan.code if row.scheduled_plan else None,
        "scheduled_change_at": row.scheduled_change_at.isoformat() if row.scheduled_change_at else None,
        "cancel_at_period_end": row.cancel_at_period_end,
        "current_period_end": row.current_period_end.isoformat() if row.current_period_end else None,
    }


def _record(session: Session, row: AppSubscription, action: str, before: dict, origin: Origin) -> AuditLog:
    session.flush()
    session.expire(row, ["scheduled_plan"])  # sync set the foreign key; reload the plan it points at
    return audit.record(session, action=action, object_type="app_subscription", object_id=row.stripe_subscription_id,
                 app_id=row.app_id, before=before, after=_plan_picture(row), origin=origin)


def _tell_owners(session: Session, row: AppSubscription, kind: NoticeKind, entry: AuditLog, smtp_configured: bool,
                 **data: Any) -> None:
    """The owners' notice of a change, written with it; its audit entry names the occasion, so it is told once
    (cancel, resume and cancel again are three occasions)."""
    session.flush()
    notify_owners(session, row.app, kind=kind, data=data, smtp_configured=smtp_configured,
                  dedupe_key=f"subscription:{row.stripe_subscription_id}:{kind}:audit:{entry.id}")

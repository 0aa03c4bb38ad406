"""Finishing a Stripe Checkout Session, from whichever side hears of it first.

The browser's redirect to ``/billing/success`` (``complete_checkout_outside_transaction``: Stripe is
asked with no transaction open) and the ``checkout.session.completed`` webhook both end in
``complete_checkout``. It never trusts what it is told: it asks
Stripe for the session, applies it once, and a second call (a reload, the other
side arriving later, a redelivered event) finds it done and changes nothing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing import audit, clock, metrics
from billing.audit import Origin
from billing.dunning import DunningContext, resume_if_settled
from billing.actions import end_transaction
from billing.gateway import Card, CheckoutSession, Invoice, StripeGateway, Subscription, SubscriptionSchedule
from billing.models import App, CheckoutMode, CheckoutStatus, KernelCheckoutSession
from billing.notifications import NoticeKind, iso, notify_owners
from billing.sync import refetch_invoice, refetch_subscription, sync_invoice, sync_subscription
from billing.webhooks.prefetch import asking

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckoutResult:
    local: Optional[KernelCheckoutSession]  # None: not a session the portal opened
    remote: Optional[CheckoutSession]
    newly_completed: bool = False

    @property
    def is_complete(self) -> bool:
        return self.local is not None and self.local.status == CheckoutStatus.COMPLETE


@dataclass(frozen=True)
class CheckoutFetched:
    """What Stripe says of a Checkout Session and of what it made, asked before our rows are written."""

    remote: CheckoutSession
    subscription: Optional[tuple[Subscription, Optional[SubscriptionSchedule], Optional[Card]]] = None
    first_invoice: Optional[Invoice] = None
    card: Optional[Card] = None  # setup mode: the saved card, now the default
    observed_at: int = 0
    asked_ns: Optional[int] = None  # when Stripe was asked (billing.webhooks.prefetch.asking)


def fetch_checkout(gateway: StripeGateway, stripe_session_id: str, *, mode: str, customer_id: Optional[str],
                   live_subscription_id: Optional[str]) -> CheckoutFetched:
    """Ask Stripe how the session ended and read what it made; a saved card is made the default here (keyed by
    the session, so a second completion replays it). Touches no table: callable with no transaction open."""
    asked_ns = asking(gateway)
    if mode == CheckoutMode.SUBSCRIPTION:
        remote, full, invoice = gateway.retrieve_checkout_session_in_full(stripe_session_id)
        if remote.is_complete and remote.subscription and full is not None:
            return CheckoutFetched(remote, full, invoice, observed_at=int(clock.now().timestamp()),
                                   asked_ns=asked_ns)
        return CheckoutFetched(remote)
    remote = gateway.retrieve_checkout_session(stripe_session_id)
    if remote.is_complete and remote.setup_payment_method:
        customer = remote.customer or customer_id
        assert customer is not None
        card, full = gateway.set_default_payment_method_in_full(customer, remote.setup_payment_method,
                                                                live_subscription_id,
                                                                change=f"checkout:{stripe_session_id}")
        return CheckoutFetched(remote, full, card=card, observed_at=int(clock.now().timestamp()),
                               asked_ns=asked_ns)
    return CheckoutFetched(remote)


def _live_subscription_id(app: App) -> Optional[str]:
    """The subscription a saved card becomes the default of: the app's latest, while it grants access."""
    live = app.current_subscription
    return live.stripe_subscription_id if live and live.status.grants_access else None


def complete_checkout_outside_transaction(session: Session, gateway: StripeGateway, stripe_session_id: str, *,
                                          origin: Origin, app_id: Optional[int] = None,
                                          smtp_configured: bool = False) -> CheckoutResult:
    """``complete_checkout`` for an owner's request: our rows are read and the transaction ended before Stripe is
    asked, then the answer is applied in a short transaction under the session's row lock (which a webhook
    completing it meanwhile has left COMPLETE: nothing is applied twice). The caller commits."""
    local = session.scalar(select(KernelCheckoutSession).where(
        KernelCheckoutSession.stripe_session_id == stripe_session_id))
    if local is None or (app_id is not None and local.app_id != app_id):
        return CheckoutResult(None, None)
    if local.status == CheckoutStatus.COMPLETE:
        return CheckoutResult(local, None)
    app = session.get(App, local.app_id)
    mode, customer_id, live_id = local.mode, app.stripe_customer_id, _live_subscription_id(app)
    end_transaction(session)
    fetched = fetch_checkout(gateway, stripe_session_id, mode=mode, customer_id=customer_id,
                             live_subscription_id=live_id if mode == CheckoutMode.SETUP else None)
    return complete_checkout(session, gateway, stripe_session_id, origin=origin, app_id=app_id,
                             smtp_configured=smtp_configured, fetched=fetched)


def complete_checkout(session: Session, gateway: StripeGateway, stripe_session_id: str, *, origin: Origin,
                      app_id: Optional[int] = None, smtp_configured: bool = False,
                      fetched: Optional[CheckoutFetched] = None) -> CheckoutResult:
    """Apply a completed Checkout Session to our tables; idempotent.

    ``app_id`` (from the URL the owner came back to) must match the app the session
    was opened for, so one tenant cannot complete another's session. ``fetched``: Stripe's
    answer read beforehand (``fetch_checkout``); without it, Stripe is asked here.
    """
    local = session.scalar(
        select(KernelCheckoutSession).where(KernelCheckoutSession.stripe_session_id == stripe_session_id)
        .with_for_update().execution_options(populate_existing=True)
    )
    if local is None or (app_id is not None and local.app_id != app_id):
        return CheckoutResult(None, None)
    if local.status == CheckoutStatus.COMPLETE:
        return CheckoutResult(local, None)

    app = session.get(App, local.app_id)
    if fetched is None:
        fetched = fetch_checkout(gateway, stripe_session_id, mode=local.mode, customer_id=app.stripe_customer_id,
                                 live_subscription_id=_live_subscription_id(app))
    remote = fetched.remote
    if not remote.is_complete:
        if remote.status == "expired":
            local.status = CheckoutStatus.EXPIRED
            metrics.checkout(local.plan.code if local.plan else None, local.mode, "expired")
        return CheckoutResult(local, remote)

    if app.stripe_customer_id is None and remote.customer:
        app.stripe_customer_id = remote.customer
    if local.mode == CheckoutMode.SUBSCRIPTION and fetched.subscription is not None:
        subscription, schedule, card = fetched.subscription
        result = sync_subscription(session, subscription, observed_at=fetched.observed_at, origin=origin,
                                   schedule=schedule, card=card, asked_ns=fetched.asked_ns,
                                   refetch=refetch_subscription(gateway, subscription.id))
        invoice = None
        if result.row is not None and fetched.first_invoice is not None and fetched.first_invoice.id:
            invoice = sync_invoice(session, fetched.first_invoice, observed_at=fetched.observed_at,
                                   origin=origin, asked_ns=fetched.asked_ns,
                                   refetch=refetch_invoice(gateway, fetched.first_invoice.id)).row
        if result.row is not None:
            row = result.row
            # Once per subscription, whichever side (redirect or webhook) completes the session.
            notify_owners(session, app, kind=NoticeKind.SUBSCRIBED, smtp_configured=smtp_configured,
                          dedupe_key=f"subscription:{row.stripe_subscription_id}:subscribed",
                          data={"plan": row.plan.code, "amount": invoice.amount_paid if invoice else 0,
                                "currency": invoice.currency if invoice else row.plan.currency,
                                "invoice": invoice.number if invoice else None, "trial_end_at": iso(row.trial_end),
                                "renews_at": iso(row.current_period_end)})
    elif local.mode == CheckoutMode.SETUP and remote.setup_payment_method and fetched.card is not None:
        if fetched.subscription is not None:
            subscription, schedule, card = fetched.subscription
            sync_subscription(session, subscription, observed_at=fetched.observed_at, origin=origin,
                              schedule=schedule, card=card, asked_ns=fetched.asked_ns,
                              refetch=refetch_subscription(gateway, subscription.id))
        notify_owners(session, app, kind=NoticeKind.CARD_CHANGED, smtp_configured=smtp_configured,
                      dedupe_key=f"checkout:{stripe_session_id}:card_changed",
                      data={"brand": fetched.card.brand, "last4": fetched.card.last4})

    if local.mode == CheckoutMode.SUBSCRIPTION:
        # A paused app that subscribes again runs again at once (see billing.dunning's rule).
        resume_if_settled(session, app, DunningContext(gateway=gateway, now=clock.now(), origin=origin))
    local.status = CheckoutStatus.COMPLETE
    local.completed_at = clock.now()
    audit.record(session, action=f"checkout.{local.mode}.completed", object_type="checkout_session",
                 object_id=stripe_session_id, app_id=app.id, before={"status": "open"},
                 after={"status": "complete"}, origin=origin)
    log.info("checkout %s completed for app %s (%s)", stripe_session_id, app.id, origin.actor)
    metrics.checkout(local.plan.code if local.plan else None, local.mode, "completed")
    return CheckoutResult(local, remote, newly_completed=True)

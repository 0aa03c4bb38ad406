"""Finishing a Stripe Checkout Session, from whichever side hears of it first.

The browser's redirect to ``/billing/success`` and the ``checkout.session.completed``
webhook both call ``complete_checkout``. It never trusts what it is told: it asks
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
from billing.gateway import CheckoutSession, StripeGateway
from billing.models import App, CheckoutMode, CheckoutStatus, KernelCheckoutSession
from billing.notifications import NoticeKind, iso, notify_owners
from billing.sync import sync_invoice, sync_subscription_from_gateway

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckoutResult:
    local: Optional[KernelCheckoutSession]  # None: not a session the portal opened
    remote: Optional[CheckoutSession]
    newly_completed: bool = False

    @property
    def is_complete(self) -> bool:
        return self.local is not None and self.local.status == CheckoutStatus.COMPLETE


def complete_checkout(session: Session, gateway: StripeGateway, stripe_session_id: str, *, origin: Origin,
                      app_id: Optional[int] = None, smtp_configured: bool = False) -> CheckoutResult:
    """Apply a completed Checkout Session to our tables; idempotent.

    ``app_id`` (from the URL the owner came back to) must match the app the session
    was opened for, so one tenant cannot complete another's session.
    """
    local = session.scalar(
        select(KernelCheckoutSession).where(KernelCheckoutSession.stripe_session_id == stripe_session_id)
        .with_for_update()
    )
    if local is None or (app_id is not None and local.app_id != app_id):
        return CheckoutResult(None, None)
    if local.status == CheckoutStatus.COMPLETE:
        return CheckoutResult(local, None)

    remote = gateway.retrieve_checkout_session(stripe_session_id)
    if not remote.is_complete:
        if remote.status == "expired":
            local.status = CheckoutStatus.EXPIRED
            metrics.checkout(local.plan.code if local.plan else None, local.mode, "expired")
        return CheckoutResult(local, remote)

    app = session.get(App, local.app_id)
    if app.stripe_customer_id is None and remote.customer:
        app.stripe_customer_id = remote.customer
    if local.mode == CheckoutMode.SUBSCRIPTION and remote.subscription:
        result = sync_subscription_from_gateway(session, gateway, remote.subscription, origin=origin)
        first_invoice = result.remote.latest_invoice if result.remote else None
        invoice = None
        if result.row is not None and first_invoice:
            invoice = sync_invoice(session, gateway.retrieve_invoice(first_invoice),
                                   observed_at=int(clock.now().timestamp()), origin=origin).row
        if result.row is not None:
            row = result.row
            # Once per subscription, whichever side (redirect or webhook) completes the session.
            notify_owners(session, app, kind=NoticeKind.SUBSCRIBED, smtp_configured=smtp_configured,
                          dedupe_key=f"subscription:{row.stripe_subscription_id}:subscribed",
                          data={"plan": row.plan.code, "amount": invoice.amount_paid if invoice else 0,
                                "currency": invoice.currency if invoice else row.plan.currency,
                                "invoice": invoice.number if invoice else None, "trial_end_at": iso(row.trial_end),
                                "renews_at": iso(row.current_period_end)})
    elif local.mode == CheckoutMode.SETUP and remote.setup_payment_method:
        live = app.current_subscription
        live_id = live.stripe_subscription_id if live and live.status.grants_access else None
        gateway.set_default_payment_method(remote.customer or app.stripe_customer_id, remote.setup_payment_method,
                                           subscription_id=live_id)
        synced = sync_subscription_from_gateway(session, gateway, live_id, origin=origin).row if live_id else None
        if synced is not None and synced.payment_method_id == remote.setup_payment_method:
            brand, last4 = synced.card_brand, synced.card_last4  # the sync has just read the card
        else:
            card = gateway.retrieve_card(remote.setup_payment_method)
            brand, last4 = card.brand, card.last4
        notify_owners(session, app, kind=NoticeKind.CARD_CHANGED, smtp_configured=smtp_configured,
                      dedupe_key=f"checkout:{stripe_session_id}:card_changed", data={"brand": brand, "last4": last4})

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

"""An owner pays the app's open invoice with a card just saved through Checkout (setup mode), ending dunning.

The portal's pay page opens the setup Checkout; back from it, ``pay_with_saved_card``
does the rest: the saved card becomes the default, the charge is recorded (key, who
asked) and committed before Stripe is called, and a paid invoice is synced, audited,
takes the app out of dunning (reactivating an app paused after the last retry) and
settles the charge. No transaction is open while Stripe is called.
"""
from __future__ import annotations

import enum
from typing import Optional

from sqlalchemy.orm import Session

from billing import audit, charges
from billing.checkout import complete_checkout_outside_transaction
from billing.dunning import DunningContext, outstanding_invoice, settle_if_in_dunning
from billing.errors import GatewayError, GatewayUnavailable
from billing.gateway import Invoice, pay_invoice_key
from billing.models import ChargeAttempt, ChargeStatus, InvoiceStatus, KernelInvoice
from billing.states import SubscriptionStatus
from billing.sync import sync_invoice
from billing.webhooks.prefetch import asking


class OwnerPayment(enum.Enum):
    """How paying with the saved card ended (a declined card raises ``CardDeclined`` instead)."""

    CARD_NOT_SAVED = "card_not_saved"  # the Checkout was left or expired: nothing charged
    NOTHING_DUE = "nothing_due"  # the card was saved; no invoice is open any more
    CONFIRMING = "confirming"  # the answer was lost, or another charge is in doubt: never "nothing charged"
    PAID = "paid"


def pay_with_saved_card(session: Session, ctx: DunningContext, app_id: int, checkout_session_id: str) -> OwnerPayment:
    """Back from the setup Checkout ``checkout_session_id`` of ``app_id``: make the saved card the default and pay
    the app's outstanding invoice with it. Commits.

    Raises ``CardDeclined`` (the charge recorded as failed) and other ``GatewayError``: nothing was charged.
    """
    result = complete_checkout_outside_transaction(session, ctx.gateway, checkout_session_id, origin=ctx.origin,
                                                   app_id=app_id, smtp_configured=ctx.smtp_configured)
    session.commit()
    if not result.is_complete:
        return OwnerPayment.CARD_NOT_SAVED
    invoice = outstanding_invoice(session, app_id)
    if invoice is None:
        return OwnerPayment.NOTHING_DUE
    stripe_invoice_id, invoice_row_id = invoice.stripe_invoice_id, invoice.id
    subscription = invoice.subscription
    subscription_id = (subscription.stripe_subscription_id
                       if subscription is not None and subscription.status != SubscriptionStatus.CANCELED else None)
    card = result.remote.setup_payment_method if result.remote else None
    session.commit()  # nothing stays open while Stripe is called
    if card is None:
        card = ctx.gateway.retrieve_checkout_session(checkout_session_id).setup_payment_method
    asked_ns = asking(ctx.gateway)
    paid, charge = _charge(session, ctx, app_id, stripe_invoice_id, f"owner:{checkout_session_id}", card)
    if paid is None:
        return OwnerPayment.CONFIRMING
    # What ending dunning writes about the subscription, read now rather than inside the transaction below.
    state_asked_ns = asking(ctx.gateway)
    state = ctx.gateway.retrieve_subscription_in_full(subscription_id) if subscription_id else None
    sync_invoice(session, paid, observed_at=int(ctx.now.timestamp()), origin=ctx.origin, asked_ns=asked_ns)
    audit.record(session, action="invoice.paid_by_owner", object_type="kernel_invoice",
                 object_id=stripe_invoice_id, app_id=app_id, before={"status": "open"},
                 after={"status": paid.status, "amount_paid": paid.amount_paid}, origin=ctx.origin)
    invoice = session.get(KernelInvoice, invoice_row_id)
    settle_if_in_dunning(session, invoice, ctx, paid_by="owner", subscription_state=state,
                         state_asked_ns=state_asked_ns)
    charges.settle(session, charge, ChargeStatus.SUCCEEDED if paid.status == InvoiceStatus.PAID else ChargeStatus.FAILED,
                   ctx.origin, invoice=paid)
    session.commit()
    return OwnerPayment.PAID


def _charge(session: Session, ctx: DunningContext, app_id: int, invoice_id: str, attempt: str,
            card: Optional[str]) -> tuple[Optional[Invoice], ChargeAttempt]:
    """Charge the open invoice, the charge recorded (key, who asked) and committed before Stripe is called.

    Returns ``(invoice, charge)``, or ``(None, charge)`` when the answer was lost (or another charge of the
    app is still in doubt). A definite refusal is recorded as not charged and raised.
    """
    try:
        charge, _new = charges.begin(session, app_id=app_id, kind=charges.INVOICE_PAYMENT,
                                     key=pay_invoice_key(invoice_id, attempt), target=invoice_id, origin=ctx.origin,
                                     details={"attempt": attempt, "payment_method": card})
    except charges.ChargeInDoubt as doubt:
        session.rollback()
        return None, doubt.attempt
    session.commit()
    try:
        return ctx.gateway.pay_invoice(invoice_id, attempt=attempt, payment_method_id=card), charge
    except GatewayUnavailable as error:
        session.rollback()
        charges.mark_unknown(session, charge, error, ctx.origin)
        session.commit()
        return None, charge
    except GatewayError as error:
        session.rollback()
        charges.settle(session, charge, ChargeStatus.FAILED, ctx.origin, error=error.code or error.message)
        session.commit()
        raise

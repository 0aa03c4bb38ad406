"""What each Stripe event does to our tables: a table from event type to handler.

Registering a handler for a name that is not a Stripe event type fails when this
module is imported (as in dj-stripe), so a typo such as ``invoice.payed`` can never
sit silently in the table. Events without a handler are recorded and ignored.

Handlers treat the payload as a hint, not the truth: state goes through
``billing.sync``, which ignores what is older than the row's watermark and asks
Stripe again when an event is as old as the row (same second). Every change is
audited with the event id as correlation id (``ctx.origin``).
"""
from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing import audit, charges, clock
from billing.audit import Origin
from billing.checkout import complete_checkout
from billing.dunning import DunningContext, open_dunning, settle_if_in_dunning
from billing.gateway import StripeGateway
from billing.gateway.types import (
    Invoice,
    PaymentIntent,
    Refund,
    Subscription,
    object_id,
    ts,
)
from billing.models import (
    AlertSeverity,
    App,
    AppSubscription,
    KernelInvoice,
    KernelPayment,
)
from billing.states import (
    IllegalTransition,
    SubscriptionStatus,
    can_transition,
    transition_path,
)
from billing.sync import (
    Outcome,
    SyncResult,
    app_for_customer,
    refetch_invoice,
    refetch_subscription,
    sync_invoice,
    sync_subscription,
)
from billing.webhooks.events import Event
from billing.webhooks.prefetch import Call, asked_since
from billing.webhooks.payments import (
    payment_for,
    payment_from_charge,
    record_refunds,
    upsert_payment,
)

log = logging.getLogger(__name__)


class Handled(enum.StrEnum):
    DONE = "processed"  # applied, or found already applied / older than what we hold
    NOT_OURS = "ignored"  # about an object no app of ours owns


@dataclass(frozen=True)
class HandlerContext:
    session: Session
    gateway: StripeGateway
    event: Event
    origin: Origin
    smtp_configured: bool = False

    @property
    def object(self) -> Mapping[str, Any]:
        return self.event.object


Handler = Callable[[HandlerContext], Handled]

# The Stripe event types of the families the kernel may care about, as spelled in
# Stripe's API reference (tests check each against the stripe SDK's list).
KNOWN_EVENT_TYPES = frozenset({
    "charge.captured", "charge.expired", "charge.failed", "charge.pending", "charge.refund.updated",
    "charge.refunded", "charge.succeeded", "charge.updated", "charge.dispute.created", "charge.dispute.closed",
    "checkout.session.async_payment_failed", "checkout.session.async_payment_succeeded",
    "checkout.session.completed", "checkout.session.expired",
    "customer.created", "customer.deleted", "customer.updated",
    "customer.subscription.created", "customer.subscription.deleted", "customer.subscription.paused",
    "customer.subscription.pending_update_applied", "customer.subscription.pending_update_expired",
    "customer.subscription.resumed", "customer.subscription.trial_will_end", "customer.subscription.updated",
    "invoice.created", "invoice.deleted", "invoice.finalization_failed", "invoice.finalized",
    "invoice.marked_uncollectible", "invoice.overdue", "invoice.paid", "invoice.payment_action_required",
    "invoice.payment_failed", "invoice.payment_succeeded", "invoice.sent", "invoice.upcoming", "invoice.updated",
    "invoice.voided", "invoice_payment.paid",
    "payment_intent.amount_capturable_updated", "payment_intent.canceled", "payment_intent.created",
    "payment_intent.payment_failed", "payment_intent.processing", "payment_intent.requires_action",
    "payment_intent.succeeded",
    "payment_method.attached", "payment_method.detached", "payment_method.updated",
    "refund.created", "refund.updated",
    "setup_intent.canceled", "setup_intent.created", "setup_intent.setup_failed", "setup_intent.succeeded",
    "subscription_schedule.canceled", "subscription_schedule.completed", "subscription_schedule.created",
    "subscription_schedule.released", "subscription_schedule.updated",
})

HANDLERS: dict[str, Handler] = {}
# The Stripe calls a handler is known to make once it makes one (it is about an object of ours), read from the
# event alone: fetched together with the first (billing/webhooks/processing.py), not one round after another.
HINTS: dict[str, Callable[[Event], list[Call]]] = {}


def handles(*event_types: str) -> Callable[[Handler], Handler]:
    """Register the decorated function for ``event_types``; an unknown or doubly handled name fails at import."""

    def register(handler: Handler) -> Handler:
        for event_type in event_types:
            if event_type not in KNOWN_EVENT_TYPES:
                raise ValueError(f"{event_type!r} is not a Stripe event type (handler {handler.__name__})")
            if event_type in HANDLERS:
                raise ValueError(f"{event_type!r} already has a handler ({HANDLERS[event_type].__name__})")
            HANDLERS[event_type] = handler
        return handler

    return register


def _result(sync: SyncResult) -> Handled:
    return Handled.NOT_OURS if sync.outcome == Outcome.NOT_OURS else Handled.DONE


# ---------------------------------------------------------------- checkout

@handles("checkout.session.completed")
def checkout_completed(ctx: HandlerContext) -> Handled:
    """The same completion the success redirect runs; whichever comes second finds it done."""
    result = complete_checkout(ctx.session, ctx.gateway, ctx.object["id"], origin=ctx.origin,
                               smtp_configured=ctx.smtp_configured)
    return Handled.DONE if result.local is not None else Handled.NOT_OURS


# ---------------------------------------------------------------- subscriptions

def _subscription_row(session: Session, subscription_id: str) -> Optional[AppSubscription]:
    # Locked: another worker applying an event about the same subscription waits for this one's commit.
    return session.scalar(select(AppSubscription).where(AppSubscription.stripe_subscription_id == subscription_id)
                          .with_for_update())


def _apply_subscription(ctx: HandlerContext, remote: Subscription, row: Optional[AppSubscription], *,
                        ask_on_tie: bool = True) -> SyncResult:
    """Sync ``remote`` with the schedule and card it points to, fetched only when they may have changed."""
    schedule = ctx.gateway.retrieve_schedule(remote.schedule) if remote.schedule else None
    card = None
    method = remote.default_payment_method
    if method and (row is None or row.payment_method_id != method or row.card_last4 is None):
        card = ctx.gateway.retrieve_card(method)
    refetch = refetch_subscription(ctx.gateway, remote.id) if ask_on_tie else None
    return sync_subscription(ctx.session, remote, observed_at=ctx.event.created, origin=ctx.origin,
                             refetch=refetch, schedule=schedule, card=card)


def _catch_up(ctx: HandlerContext, row: AppSubscription, target: SubscriptionStatus) -> None:
    """Walk ``row`` through the statuses Stripe's subscription must have passed on its way to ``target``.

    Only for Stripe's present state, fetched just now: when the events in between were
    consumed out of order (or tied), the state machine would otherwise refuse the truth
    for ever. Each inferred step is audited as such.
    """
    path = transition_path(row.status, target)
    if path is None:
        raise IllegalTransition(row.status, target)
    for step in path[1:-1]:
        previous = row.move_to(step)
        audit.record(ctx.session, action="subscription.status_inferred", object_type="app_subscription",
                     object_id=row.stripe_subscription_id, app_id=row.app_id, before={"status": previous.value},
                     after={"status": step.value}, origin=ctx.origin)


def apply_stripe_subscription(ctx: HandlerContext, subscription_id: str) -> SyncResult:
    """Fetch the subscription from Stripe and apply that (the freshest truth) at this event's time."""
    row = _subscription_row(ctx.session, subscription_id)
    if row is not None and ctx.event.created < row.stripe_watermark:
        return SyncResult(Outcome.STALE, row)
    # Applied at the event's time, which may be our row's second: the truth must be asked after the row last
    # changed, or an answer asked just before the owner's same-second cancel would undo it (billing.sync).
    truth = asked_since(ctx.gateway, row.stripe_synced_ns if row is not None else None).retrieve_subscription(
        subscription_id)
    if row is not None and not can_transition(row.status, SubscriptionStatus(truth.status)):
        log.info("%s: catching %s up from %s to Stripe's %s", ctx.event.type, subscription_id, row.status,
                 truth.status)
        _catch_up(ctx, row, SubscriptionStatus(truth.status))
    return _apply_subscription(ctx, truth, row, ask_on_tie=False)


@handles("customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
         "customer.subscription.paused", "customer.subscription.resumed")
def subscription_changed(ctx: HandlerContext) -> Handled:
    """Our subscription row follows Stripe's: status, plan, period, cancel-at-period-end, schedule, card."""
    remote = Subscription.from_stripe(ctx.object)
    row = _subscription_row(ctx.session, remote.id)
    if row is None and app_for_customer(ctx.session, remote.customer) is None:
        return Handled.NOT_OURS
    if row is not None and ctx.event.created < row.stripe_watermark:
        log.info("%s is older than the state we hold for %s: ignored", ctx.event.type, remote.id)
        return Handled.DONE
    if row is not None and ctx.event.created == row.stripe_watermark:
        # Same second as what we hold: only Stripe can say which came last.
        return _result(apply_stripe_subscription(ctx, remote.id))
    try:
        return _result(_apply_subscription(ctx, remote, row))
    except IllegalTransition as refused:
        # Either we hold a fresher truth than our watermark says (fetched when an earlier
        # event tied), or events in between are late: Stripe's present state settles both.
        log.info("%s for %s refused (%s): applying Stripe's current state", ctx.event.type, remote.id, refused)
        return _result(apply_stripe_subscription(ctx, remote.id))


# ---------------------------------------------------------------- invoices

def _sync_invoice(ctx: HandlerContext) -> SyncResult:
    remote = Invoice.from_stripe(ctx.object)
    if remote.id is None:
        return SyncResult(Outcome.NOT_OURS)
    return sync_invoice(ctx.session, remote, observed_at=ctx.event.created, origin=ctx.origin,
                        refetch=refetch_invoice(ctx.gateway, remote.id))


@handles("invoice.created", "invoice.finalized", "invoice.updated", "invoice.voided", "invoice.marked_uncollectible")
def invoice_changed(ctx: HandlerContext) -> Handled:
    """The invoice row follows Stripe's (status, amounts, number, links)."""
    return _result(_sync_invoice(ctx))


def _payment_intents_of(ctx: HandlerContext, invoice: Invoice) -> tuple[str, ...]:
    # API versions since 2025-03-31 list an invoice's PaymentIntents under ``payments``,
    # which a webhook payload may leave out; then Stripe is asked.
    return invoice.payment_intent_ids or ctx.gateway.list_invoice_payment_intents(invoice.id)


def _dunning_context(ctx: HandlerContext) -> DunningContext:
    return DunningContext(gateway=ctx.gateway, now=clock.now(), origin=ctx.origin, smtp_configured=ctx.smtp_configured)


@handles("invoice.paid")
def invoice_paid(ctx: HandlerContext) -> Handled:
    """Mark the invoice paid and record the payment that paid it in ``kernel_payments``."""
    remote = Invoice.from_stripe(ctx.object)
    intents = None
    # Held in a variable: the session's identity map keeps objects weakly, and the payment below reads
    # ``invoice_row.app`` from it instead of asking the database again.
    app = app_for_customer(ctx.session, remote.customer) if remote.amount_paid > 0 else None
    if app is not None:
        # Stripe first, writes after: an event stopped for a Stripe answer before writing anything is simply
        # run again, without a savepoint to roll back (billing/webhooks/processing.py).
        intents = [ctx.gateway.retrieve_payment_intent(i) for i in _payment_intents_of(ctx, remote)]
    result = _sync_invoice(ctx)
    if result.outcome == Outcome.NOT_OURS:
        return Handled.NOT_OURS
    invoice_row: KernelInvoice = result.row
    settle_if_in_dunning(ctx.session, invoice_row, _dunning_context(ctx), paid_by="stripe")
    charges.settle_from_invoice(ctx.session, remote, ctx.origin)  # an owner's charge whose answer was lost
    if remote.amount_paid <= 0:
        return Handled.DONE  # a zero-amount invoice (a trial) is paid without any payment
    if intents is None:  # ours by its invoice row, not by its customer: asked now
        intents = [ctx.gateway.retrieve_payment_intent(i) for i in _payment_intents_of(ctx, remote)]
    for intent in intents:
        if intent.status == "succeeded":
            upsert_payment(ctx.session, invoice_row.app, intent, observed_at=ctx.event.created, origin=ctx.origin,
                           invoice=invoice_row, paid_at=invoice_row.paid_at or ts(ctx.event.created))
    return Handled.DONE


def _paid_invoice_hints(event: Event) -> list[Call]:
    # The PaymentIntents ``invoice_paid`` retrieves (named in the payload since API 2025-03-31). Not the
    # invoice itself: paid in the second it was finalized (a renewal), the event is further along than our
    # open row and applied without asking (billing.sync.invoice_ahead); only a tie with a row already paid
    # or void asks, one round later.
    invoice = Invoice.from_stripe(event.object)
    if invoice.id is None:
        return []
    intents = invoice.payment_intent_ids if invoice.amount_paid > 0 else ()
    return [Call.of("retrieve_payment_intent", intent_id) for intent_id in intents]


HINTS["invoice.paid"] = _paid_invoice_hints


@handles("invoice.payment_failed")
def invoice_payment_failed(ctx: HandlerContext) -> Handled:
    """The subscription follows Stripe to past_due and dunning opens: attempt #0, alert, owner notice."""
    result = _sync_invoice(ctx)
    if result.outcome == Outcome.NOT_OURS:
        return Handled.NOT_OURS
    invoice_row: KernelInvoice = result.row
    remote = Invoice.from_stripe(ctx.object)
    if remote.subscription:
        apply_stripe_subscription(ctx, remote.subscription)
        ctx.session.refresh(invoice_row)
    if not invoice_row.is_open:
        log.info("invoice %s is %s by now: no dunning", invoice_row.stripe_invoice_id, invoice_row.status)
        return Handled.DONE

    failure_code = None
    intents = _payment_intents_of(ctx, remote)
    if intents:
        failure_code = ctx.gateway.retrieve_payment_intent(intents[-1]).last_error_code
    subscription = invoice_row.subscription
    if subscription is not None and subscription.status.in_dunning:
        open_dunning(ctx.session, invoice_row, failed_at=ts(ctx.event.created), origin=ctx.origin,
                     failure_code=failure_code, smtp_configured=ctx.smtp_configured)
    else:
        # A failed first payment (the subscription is still incomplete) or a one-off invoice: no dunning, but
        # someone must know.
        audit.raise_alert(
            ctx.session, kind="invoice_payment_failed", severity=AlertSeverity.WARNING, app_id=invoice_row.app_id,
            message=f"Payment failed for invoice {invoice_row.number or invoice_row.stripe_invoice_id}"
                    f" ({failure_code or 'declined'}).",
            details={"invoice": invoice_row.stripe_invoice_id, "amount_due": invoice_row.amount_due,
                     "currency": invoice_row.currency, "failure_code": failure_code, "event": ctx.event.id},
            dedupe_key=f"invoice_payment_failed:{invoice_row.stripe_invoice_id}",
        )
    return Handled.DONE


# ---------------------------------------------------------------- payments

def _app_of(ctx: HandlerContext, customer: Any, payment: Optional[KernelPayment] = None) -> Optional[App]:
    if payment is not None:
        return ctx.session.get(App, payment.app_id)
    return app_for_customer(ctx.session, object_id(customer))


@handles("payment_intent.succeeded")
def payment_intent_succeeded(ctx: HandlerContext) -> Handled:
    """Record (or complete) the payment in ``kernel_payments``."""
    intent = PaymentIntent.from_stripe(ctx.object)
    existing = payment_for(ctx.session, intent.id)
    app = _app_of(ctx, intent.customer, existing)
    if app is None:
        return Handled.NOT_OURS
    upsert_payment(ctx.session, app, intent, observed_at=ctx.event.created, origin=ctx.origin, existing=existing)
    return Handled.DONE


@handles("payment_intent.payment_failed")
def payment_intent_failed(ctx: HandlerContext) -> Handled:
    """Record the failed attempt and alert the superadmins, once per PaymentIntent."""
    intent = PaymentIntent.from_stripe(ctx.object)
    existing = payment_for(ctx.session, intent.id)
    app = _app_of(ctx, intent.customer, existing)
    if app is None:
        return Handled.NOT_OURS
    upsert_payment(ctx.session, app, intent, observed_at=ctx.event.created, origin=ctx.origin, existing=existing)
    audit.raise_alert(
        ctx.session, kind="payment_intent_failed", severity=AlertSeverity.WARNING, app_id=app.id,
        message=f"A payment of {app.name} failed ({intent.last_error_code or 'declined'}).",
        details={"payment_intent": intent.id, "amount": intent.amount, "currency": intent.currency,
                 "failure_code": intent.last_error_code, "event": ctx.event.id},
        dedupe_key=f"payment_intent_failed:{intent.id}",
    )
    return Handled.DONE


@handles("charge.refunded")
def charge_refunded(ctx: HandlerContext) -> Handled:
    """One ``kernel_refunds`` row per refund, and the payment's refunded amount raised."""
    charge = ctx.object
    intent_id = object_id(charge.get("payment_intent"))
    existing = payment_for(ctx.session, intent_id) if intent_id else None
    app = _app_of(ctx, charge.get("customer"), existing)
    if app is None:
        return Handled.NOT_OURS
    payment = payment_from_charge(ctx.session, app, charge, origin=ctx.origin)
    listed = charge.get("refunds") if isinstance(charge.get("refunds"), Mapping) else None
    if listed is not None and not listed.get("has_more"):
        refunds = [(Refund.from_stripe(item), item.get("created")) for item in listed.get("data") or []]
    elif intent_id:
        refunds = [(refund, None) for refund in ctx.gateway.list_refunds(payment_intent_id=intent_id)]
    else:
        refunds = []
    record_refunds(ctx.session, payment, refunds, amount_refunded=int(charge.get("amount_refunded") or 0),
                   origin=ctx.origin)
    return Handled.DONE

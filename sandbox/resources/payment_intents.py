"""PaymentIntents and Charges: where every payment attempt in the sandbox happens."""

from __future__ import annotations

import copy
from typing import Any

from .. import cards
from ..context import Ctx
from ..errors import CardError, InvalidRequest
from ..events import changes, emit
from ..objects.payments import charge as build_charge, payment_intent as build_payment_intent
from ..params import Params
from . import payment_methods
from .common import load, load_param, paginate, route

CANCELABLE = ("requires_payment_method", "requires_confirmation", "requires_action", "requires_capture")
MINIMUM_AMOUNT = 50


def create(ctx: Ctx, *, amount: int, currency: str, customer: str | None, payment_method: str | None,
           capture_method: str = "automatic", description: str | None = None,
           metadata: dict[str, str] | None = None, setup_future_usage: str | None = None) -> dict[str, Any]:
    pi = build_payment_intent(ctx.now, amount=amount, currency=currency, customer=customer,
                              payment_method=payment_method, capture_method=capture_method,
                              description=description, metadata=metadata or {},
                              setup_future_usage=setup_future_usage)
    ctx.db.save(pi)
    emit(ctx, "payment_intent.created", pi)
    return pi


def attempt(ctx: Ctx, pi: dict[str, Any], *, off_session: bool, authenticated: bool = False) -> CardError | None:
    """Confirm ``pi`` with its payment method: record the charge, the new status and the events.

    Returns the card error of a declined attempt (the caller decides whether that
    becomes a 402 answer) or None when the attempt succeeded or needs action.
    """
    pm = ctx.db.get(pi["payment_method"]) if pi["payment_method"] else None
    if pm is None:
        raise InvalidRequest("You cannot confirm this PaymentIntent because it's missing a payment method. "
                             "To confirm the PaymentIntent with a PaymentMethod, pass payment_method.",
                             code="payment_intent_unexpected_state", param="payment_method")
    card = payment_methods.card_of(ctx, pm)
    behaviour = card.behaviour if card else cards.SUCCEEDS
    extra = ctx.db.extra(pm["id"])
    failure: str | None = None
    if behaviour in (cards.DECLINED, cards.CHARGE_FAILS):
        failure = card.decline_code or "generic_decline"
    elif behaviour == cards.AUTH_REQUIRED and not authenticated and not extra.get("authenticated"):
        if not off_session:
            return _require_action(ctx, pi)
        failure = "authentication_required"
    old = copy.deepcopy(pi)
    if failure is None:
        if authenticated and (pi.get("setup_future_usage") or pm.get("customer")):
            # Authenticated while saving the card for later: later off-session charges succeed, as in Stripe.
            ctx.db.save(pm, extra=dict(extra, authenticated=True))
        manual = pi["capture_method"] == "manual"
        charge = build_charge(ctx.now, pi=pi, pm=pm, captured=not manual, failure=None)
        ctx.db.save(charge)
        pi["latest_charge"] = charge["id"]
        pi["last_payment_error"] = None
        pi["next_action"] = None
        if manual:
            pi["status"] = "requires_capture"
            pi["amount_capturable"] = pi["amount"]
        else:
            pi["status"] = "succeeded"
            pi["amount_received"] = pi["amount"]
        ctx.db.save(pi)
        emit(ctx, "charge.succeeded", charge)
        if manual:
            emit(ctx, "payment_intent.amount_capturable_updated", pi, changes(old, pi))
        else:
            emit(ctx, "payment_intent.succeeded", pi, changes(old, pi))
        return None
    error = cards.decline(failure)
    charge = build_charge(ctx.now, pi=pi, pm=pm, captured=False,
                          failure=(error.code or "card_declined", failure, error.message))
    ctx.db.save(charge)
    pi["latest_charge"] = charge["id"]
    pi["status"] = "requires_payment_method"
    pi["last_payment_error"] = {
        "charge": charge["id"],
        "code": error.code,
        "decline_code": failure,
        "doc_url": f"https://stripe.com/docs/error-codes/{(error.code or '').replace('_', '-')}",
        "message": error.message,
        "payment_method": pm,
        "payment_method_type": "card",
        "type": "card_error",
    }
    ctx.db.save(pi)
    emit(ctx, "charge.failed", charge)
    emit(ctx, "payment_intent.payment_failed", pi, changes(old, pi))
    error.keep_changes = True
    error.extra = {"charge": charge["id"], "payment_intent": pi, "payment_method": pm}
    return error


def _require_action(ctx: Ctx, pi: dict[str, Any]) -> None:
    old = copy.deepcopy(pi)
    pi["status"] = "requires_action"
    pi["next_action"] = {
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": ctx.url(f"/checkout/3ds/{pi['id']}"),
                           "source": pi["payment_method"]},
    }
    ctx.db.save(pi)
    emit(ctx, "payment_intent.requires_action", pi, changes(old, pi))
    return None


def charge_now(ctx: Ctx, *, amount: int, currency: str, customer: str | None, pm_id: str,
               description: str | None, off_session: bool, metadata: dict[str, str] | None = None,
               authenticated: bool = False, setup_future_usage: str | None = None
               ) -> tuple[dict[str, Any], CardError | None]:
    """Create and confirm a PaymentIntent in one go (invoices, hosted checkout)."""
    pi = create(ctx, amount=amount, currency=currency, customer=customer, payment_method=pm_id,
                description=description, metadata=metadata, setup_future_usage=setup_future_usage)
    error = attempt(ctx, pi, off_session=off_session, authenticated=authenticated)
    return ctx.db.get(pi["id"]) or pi, error


def _confirm_params(ctx: Ctx, params: Params, pi: dict[str, Any]) -> None:
    pm_id = params.str("payment_method")
    if pm_id:
        pm = payment_methods.resolve(ctx, pm_id, "payment_method")
        if pi["customer"] and pm.get("customer") not in (None, pi["customer"]):
            raise InvalidRequest("The provided PaymentMethod belongs to another customer.",
                                 param="payment_method")
        pi["payment_method"] = pm["id"]
        if pi["status"] == "requires_payment_method":
            pi["status"] = "requires_confirmation"


def _confirm(ctx: Ctx, pi: dict[str, Any], off_session: bool) -> dict[str, Any]:
    if pi["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
        raise InvalidRequest(
            f"This PaymentIntent's status is {pi['status']}, but it must be one of requires_payment_method, "
            "requires_confirmation, or requires_action to be confirmed.",
            code="payment_intent_unexpected_state", param=None)
    error = attempt(ctx, pi, off_session=off_session)
    pi = ctx.db.get(pi["id"]) or pi
    _after_invoice_payment(ctx, pi)
    if error is not None:
        raise error
    return pi


def _after_invoice_payment(ctx: Ctx, pi: dict[str, Any]) -> None:
    """A PaymentIntent created for an invoice settles that invoice when confirmed directly."""
    from . import invoices

    for payment in ctx.db.find("invoice_payment", ref=pi["id"]):
        invoices.on_intent_settled(ctx, payment, pi)


@route("POST", "/payment_intents")
def create_payment_intent(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["amount", "currency", "customer", "payment_method", "capture_method", "confirm",
                           "off_session", "description", "metadata", "setup_future_usage", "receipt_email",
                           "payment_method_types"],
                          unsupported=["automatic_payment_methods", "confirmation_method", "shipping",
                                       "statement_descriptor", "statement_descriptor_suffix", "return_url",
                                       "error_on_requires_action", "use_stripe_sdk", "payment_method_options",
                                       "mandate", "transfer_group"])
    amount = params.int("amount", required=True, minimum=0) or 0
    currency = (params.str("currency", required=True) or "").lower()
    if amount < MINIMUM_AMOUNT:
        raise InvalidRequest(f"Amount must be at least {MINIMUM_AMOUNT} minor units ({currency}).",
                             code="amount_too_small", param="amount")
    customer = load_param(ctx, params, "customer", "customer")
    capture_method = params.enum("capture_method", ["automatic", "automatic_async", "manual"],
                                 default="automatic_async") or "automatic_async"
    pi = build_payment_intent(ctx.now, amount=amount, currency=currency,
                              customer=customer["id"] if customer else None, payment_method=None,
                              capture_method=capture_method, description=params.str("description") or None,
                              metadata=params.metadata() or {},
                              setup_future_usage=params.enum("setup_future_usage", ["on_session", "off_session"]),
                              receipt_email=params.str("receipt_email") or None)
    _confirm_params(ctx, params, pi)
    ctx.db.save(pi)
    emit(ctx, "payment_intent.created", pi)
    if params.bool("confirm", False):
        off = params.raw("off_session")
        off_session = off in ("true", "one_off", "recurring")
        return _confirm(ctx, pi, off_session)
    return pi


@route("GET", "/payment_intents/<pi_id>", params=())
def retrieve_payment_intent(ctx: Ctx, params: Params, pi_id: str) -> dict[str, Any]:
    return load(ctx, pi_id, "payment_intent")


@route("POST", "/payment_intents/<pi_id>")
def update_payment_intent(ctx: Ctx, params: Params, pi_id: str) -> dict[str, Any]:
    params.reject_unknown(["amount", "currency", "customer", "payment_method", "description", "metadata",
                           "receipt_email", "setup_future_usage", "capture_method", "payment_method_types"])
    pi = load(ctx, pi_id, "payment_intent")
    if pi["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
        if set(params.data) - {"metadata", "description", "expand"}:
            raise InvalidRequest(f"You cannot update this PaymentIntent because it has a status of "
                                 f"{pi['status']}.", code="payment_intent_unexpected_state")
    if "amount" in params:
        pi["amount"] = params.int("amount", minimum=MINIMUM_AMOUNT)
    if "currency" in params:
        pi["currency"] = (params.str("currency") or "").lower()
    customer = load_param(ctx, params, "customer", "customer")
    if customer:
        pi["customer"] = customer["id"]
    given, description = params.nullable_str("description")
    if given:
        pi["description"] = description
    metadata = params.metadata(pi["metadata"])
    if metadata is not None:
        pi["metadata"] = metadata
    if "capture_method" in params:
        pi["capture_method"] = params.enum("capture_method", ["automatic", "automatic_async", "manual"])
    _confirm_params(ctx, params, pi)
    ctx.db.save(pi)
    # Stripe has no payment_intent.updated event: an update through the API announces nothing.
    return pi


@route("POST", "/payment_intents/<pi_id>/confirm")
def confirm_payment_intent(ctx: Ctx, params: Params, pi_id: str) -> dict[str, Any]:
    params.reject_unknown(["payment_method", "off_session", "capture_method", "setup_future_usage", "receipt_email",
                           "payment_method_types"],
                          unsupported=["return_url", "mandate", "payment_method_options", "error_on_requires_action",
                                       "use_stripe_sdk"])
    pi = load(ctx, pi_id, "payment_intent")
    _confirm_params(ctx, params, pi)
    if "capture_method" in params:
        pi["capture_method"] = params.enum("capture_method", ["automatic", "automatic_async", "manual"])
    ctx.db.save(pi)
    off = params.raw("off_session")
    return _confirm(ctx, pi, off in ("true", "one_off", "recurring"))


@route("POST", "/payment_intents/<pi_id>/capture")
def capture_payment_intent(ctx: Ctx, params: Params, pi_id: str) -> dict[str, Any]:
    params.reject_unknown(["amount_to_capture", "metadata"],
                          unsupported=["final_capture", "application_fee_amount", "statement_descriptor",
                                       "statement_descriptor_suffix"])
    pi = load(ctx, pi_id, "payment_intent")
    if pi["status"] != "requires_capture":
        raise InvalidRequest(f"This PaymentIntent could not be captured because it has a status of "
                             f"{pi['status']}. Only a PaymentIntent with one of the following statuses may be "
                             "captured: requires_capture.", code="payment_intent_unexpected_state")
    amount = params.int("amount_to_capture", default=pi["amount_capturable"], minimum=1)
    assert amount is not None
    if amount > pi["amount_capturable"]:
        raise InvalidRequest(f"The amount to capture ({amount}) is greater than the amount capturable "
                             f"({pi['amount_capturable']}).", code="amount_too_large", param="amount_to_capture")
    old = copy.deepcopy(pi)
    charge = load(ctx, pi["latest_charge"], "charge")
    old_charge = copy.deepcopy(charge)
    charge["captured"] = True
    charge["amount_captured"] = amount
    ctx.db.save(charge)
    pi["amount_received"] = amount
    pi["amount_capturable"] = 0
    pi["status"] = "succeeded"
    metadata = params.metadata(pi["metadata"])
    if metadata is not None:
        pi["metadata"] = metadata
    ctx.db.save(pi)
    emit(ctx, "charge.captured", charge, changes(old_charge, charge))
    emit(ctx, "payment_intent.succeeded", pi, changes(old, pi))
    return pi


@route("POST", "/payment_intents/<pi_id>/cancel")
def cancel_payment_intent(ctx: Ctx, params: Params, pi_id: str) -> dict[str, Any]:
    params.reject_unknown(["cancellation_reason"])
    pi = load(ctx, pi_id, "payment_intent")
    if pi["status"] not in CANCELABLE:
        raise InvalidRequest(
            f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}. Only a "
            f"PaymentIntent with one of the following statuses may be canceled: {', '.join(CANCELABLE)}.",
            code="payment_intent_unexpected_state")
    if ctx.db.find("invoice_payment", ref=pi["id"]):
        raise InvalidRequest("You cannot cancel this PaymentIntent because it belongs to an invoice; void the "
                             "invoice instead.", code="payment_intent_unexpected_state")
    old = copy.deepcopy(pi)
    if pi["status"] == "requires_capture" and pi["latest_charge"]:
        # Releasing an authorization shows on the charge as a full refund, as in Stripe.
        charge = load(ctx, pi["latest_charge"], "charge")
        charge["amount_refunded"] = charge["amount"]
        charge["refunded"] = True
        ctx.db.save(charge)
    pi["status"] = "canceled"
    pi["canceled_at"] = ctx.now
    pi["amount_capturable"] = 0
    pi["next_action"] = None
    pi["cancellation_reason"] = params.enum(
        "cancellation_reason", ["duplicate", "fraudulent", "requested_by_customer", "abandoned"])
    ctx.db.save(pi)
    emit(ctx, "payment_intent.canceled", pi, changes(old, pi))
    return pi


@route("GET", "/payment_intents")
def list_payment_intents(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["customer", "created", "limit", "starting_after", "ending_before"],
                          unsupported=["customer_account"])
    return paginate(ctx, params, "/v1/payment_intents", "payment_intent", customer=params.str("customer"))


@route("GET", "/charges/<charge_id>", params=())
def retrieve_charge(ctx: Ctx, params: Params, charge_id: str) -> dict[str, Any]:
    return load(ctx, charge_id, "charge")


@route("GET", "/charges")
def list_charges(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["customer", "payment_intent", "created", "limit", "starting_after", "ending_before"],
                          unsupported=["transfer_group"])
    return paginate(ctx, params, "/v1/charges", "charge", customer=params.str("customer"),
                    parent=params.str("payment_intent"))

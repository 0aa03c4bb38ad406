"""SetupIntents: saving a card for later, off-session use."""

from __future__ import annotations

import copy
from typing import Any

from .. import cards
from ..context import Ctx
from ..errors import InvalidRequest
from ..events import changes, emit
from ..objects.payments import setup_intent as build_setup_intent
from ..params import Params
from . import payment_methods
from .common import load, load_param, paginate, route


def create(ctx: Ctx, *, customer: str | None, payment_method: str | None, metadata: dict[str, str],
           usage: str = "off_session", description: str | None = None) -> dict[str, Any]:
    seti = build_setup_intent(ctx.now, customer=customer, payment_method=payment_method, usage=usage,
                              description=description, metadata=metadata,
                              status="requires_confirmation" if payment_method else "requires_payment_method")
    ctx.db.save(seti)
    emit(ctx, "setup_intent.created", seti)
    return seti


def confirm(ctx: Ctx, seti: dict[str, Any], *, authenticated: bool = False) -> dict[str, Any]:
    """Attach the payment method to the customer (card checks happen there) and succeed."""
    if seti["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
        raise InvalidRequest(f"This SetupIntent's status is {seti['status']}; it cannot be confirmed.",
                             code="setup_intent_unexpected_state")
    if not seti["payment_method"]:
        raise InvalidRequest("You cannot confirm this SetupIntent because it's missing a payment method.",
                             code="setup_intent_unexpected_state", param="payment_method")
    pm = load(ctx, seti["payment_method"], "payment_method")
    old = copy.deepcopy(seti)
    card = payment_methods.card_of(ctx, pm)
    if card is not None and card.behaviour == cards.AUTH_REQUIRED and not authenticated:
        seti["status"] = "requires_action"
        seti["next_action"] = {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}}
        ctx.db.save(seti)
        emit(ctx, "setup_intent.requires_action", seti, changes(old, seti))
        return seti
    try:
        if seti["customer"]:
            payment_methods.attach(ctx, pm, seti["customer"])
        elif card is not None and card.behaviour == cards.DECLINED:
            raise cards.decline(card.decline_code or "generic_decline")
    except cards.CardError as error:
        seti["status"] = "requires_payment_method"
        seti["last_setup_error"] = {"code": error.code, "decline_code": error.decline_code,
                                    "message": error.message, "type": "card_error", "payment_method": pm}
        ctx.db.save(seti)
        emit(ctx, "setup_intent.setup_failed", seti, changes(old, seti))
        error.keep_changes = True
        error.extra = {"setup_intent": seti}
        raise
    if authenticated:
        ctx.db.save(pm, extra=dict(ctx.db.extra(pm["id"]), authenticated=True))
    seti["status"] = "succeeded"
    seti["next_action"] = None
    seti["last_setup_error"] = None
    ctx.db.save(seti)
    emit(ctx, "setup_intent.succeeded", seti, changes(old, seti))
    return seti


@route("POST", "/setup_intents")
def create_setup_intent(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["customer", "payment_method", "confirm", "usage", "metadata", "description",
                           "payment_method_types"],
                          unsupported=["automatic_payment_methods", "single_use", "flow_directions", "on_behalf_of",
                                       "customer_account", "return_url", "mandate_data", "payment_method_options",
                                       "use_stripe_sdk"])
    customer = load_param(ctx, params, "customer", "customer")
    pm_id = params.str("payment_method")
    pm = payment_methods.resolve(ctx, pm_id, "payment_method") if pm_id else None
    seti = create(ctx, customer=customer["id"] if customer else None, payment_method=pm["id"] if pm else None,
                  metadata=params.metadata() or {},
                  usage=params.enum("usage", ["off_session", "on_session"], default="off_session") or "off_session",
                  description=params.str("description") or None)
    if params.bool("confirm", False):
        return confirm(ctx, seti)
    return seti


@route("GET", "/setup_intents/<seti_id>", params=())
def retrieve_setup_intent(ctx: Ctx, params: Params, seti_id: str) -> dict[str, Any]:
    return load(ctx, seti_id, "setup_intent")


@route("POST", "/setup_intents/<seti_id>")
def update_setup_intent(ctx: Ctx, params: Params, seti_id: str) -> dict[str, Any]:
    params.reject_unknown(["customer", "payment_method", "metadata", "description", "payment_method_types"])
    seti = load(ctx, seti_id, "setup_intent")
    metadata = params.metadata(seti["metadata"])
    if metadata is not None:
        seti["metadata"] = metadata
    customer = load_param(ctx, params, "customer", "customer")
    if customer:
        seti["customer"] = customer["id"]
    pm_id = params.str("payment_method")
    if pm_id:
        seti["payment_method"] = payment_methods.resolve(ctx, pm_id, "payment_method")["id"]
        seti["status"] = "requires_confirmation"
    ctx.db.save(seti)
    return seti


@route("POST", "/setup_intents/<seti_id>/confirm")
def confirm_setup_intent(ctx: Ctx, params: Params, seti_id: str) -> dict[str, Any]:
    params.reject_unknown(["payment_method"],
                          unsupported=["return_url", "mandate_data", "payment_method_options", "use_stripe_sdk"])
    seti = load(ctx, seti_id, "setup_intent")
    pm_id = params.str("payment_method")
    if pm_id:
        seti["payment_method"] = payment_methods.resolve(ctx, pm_id, "payment_method")["id"]
        ctx.db.save(seti)
    return confirm(ctx, seti)


@route("POST", "/setup_intents/<seti_id>/cancel")
def cancel_setup_intent(ctx: Ctx, params: Params, seti_id: str) -> dict[str, Any]:
    params.reject_unknown(["cancellation_reason"])
    seti = load(ctx, seti_id, "setup_intent")
    if seti["status"] in ("succeeded", "canceled"):
        raise InvalidRequest(f"You cannot cancel this SetupIntent because it has a status of {seti['status']}.",
                             code="setup_intent_unexpected_state")
    old = copy.deepcopy(seti)
    seti["status"] = "canceled"
    seti["cancellation_reason"] = params.enum("cancellation_reason", ["abandoned", "duplicate",
                                                                      "requested_by_customer"])
    ctx.db.save(seti)
    emit(ctx, "setup_intent.canceled", seti, changes(old, seti))
    return seti


@route("GET", "/setup_intents")
def list_setup_intents(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["customer", "payment_method", "created", "limit", "starting_after", "ending_before"],
                          unsupported=["attach_to_self", "customer_account"])
    return paginate(ctx, params, "/v1/setup_intents", "setup_intent", customer=params.str("customer"))

"""Refunds: never more than what was captured and not yet refunded."""

from __future__ import annotations

import copy
from typing import Any

from ..context import Ctx
from ..errors import InvalidRequest
from ..events import changes, emit
from ..money import format_amount
from ..objects.payments import refund as build_refund
from ..params import Params
from .common import LIST_PARAMS, load, load_param, paginate, route


@route("POST", "/refunds")
def create_refund(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["charge", "payment_intent", "amount", "reason", "metadata"],
                          unsupported=["instructions_email", "refund_application_fee", "reverse_transfer", "origin",
                                       "currency", "customer"])
    charge = load_param(ctx, params, "charge", "charge")
    pi = load_param(ctx, params, "payment_intent", "payment_intent")
    if charge is None and pi is None:
        raise InvalidRequest("One of the following params should be provided for this request: payment_intent "
                             "or charge.", code="parameter_missing", param="charge")
    if charge is None:
        assert pi is not None
        if pi["status"] != "succeeded" or not pi["latest_charge"]:
            raise InvalidRequest(f"This PaymentIntent ({pi['id']}) does not have a successful charge to refund.",
                                 code="charge_not_refundable", param="payment_intent")
        charge = load(ctx, pi["latest_charge"], "charge")
    elif pi is not None and charge["payment_intent"] != pi["id"]:
        raise InvalidRequest("The charge does not belong to that PaymentIntent.", param="charge")
    if charge["status"] != "succeeded" or not charge["captured"]:
        raise InvalidRequest(f"Charge {charge['id']} has not been captured or did not succeed, so it cannot be "
                             "refunded.", code="charge_not_refundable", param="charge")
    remaining = charge["amount_captured"] - charge["amount_refunded"]
    if remaining <= 0:
        raise InvalidRequest(f"Charge {charge['id']} has already been refunded.",
                             code="charge_already_refunded", param="charge")
    amount = params.int("amount", default=remaining, minimum=1)
    assert amount is not None
    if amount > remaining:
        raise InvalidRequest(
            f"Refund amount ({format_amount(amount, charge['currency'])}) is greater than unrefunded amount on "
            f"charge ({format_amount(remaining, charge['currency'])})", code="amount_too_large", param="amount")
    reason = params.enum("reason", ["duplicate", "fraudulent", "requested_by_customer"])
    refund = build_refund(ctx.now, charge_obj=charge, amount=amount, reason=reason,
                          metadata=params.metadata() or {})
    ctx.db.save(refund)
    old_charge = copy.deepcopy(charge)
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
    refunds = charge["refunds"]
    refunds["data"] = [refund] + refunds["data"]
    ctx.db.save(charge)
    emit(ctx, "charge.refunded", charge, changes(old_charge, charge))
    emit(ctx, "refund.created", refund)
    return refund


@route("GET", "/refunds/<refund_id>", params=())
def retrieve_refund(ctx: Ctx, params: Params, refund_id: str) -> dict[str, Any]:
    return load(ctx, refund_id, "refund")


@route("POST", "/refunds/<refund_id>")
def update_refund(ctx: Ctx, params: Params, refund_id: str) -> dict[str, Any]:
    params.reject_unknown(["metadata"])
    refund = load(ctx, refund_id, "refund")
    metadata = params.metadata(refund["metadata"])
    if metadata is not None:
        old = copy.deepcopy(refund)
        refund["metadata"] = metadata
        ctx.db.save(refund)
        if old != refund:
            emit(ctx, "refund.updated", refund, changes(old, refund))
    return refund


@route("GET", "/refunds")
def list_refunds(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["charge", "payment_intent", "created", "limit", "starting_after", "ending_before"])
    return paginate(ctx, params, "/v1/refunds", "refund", parent=params.str("charge"),
                    ref=params.str("payment_intent"))


@route("GET", "/charges/<charge_id>/refunds", params=LIST_PARAMS)
def list_charge_refunds(ctx: Ctx, params: Params, charge_id: str) -> dict[str, Any]:
    load(ctx, charge_id, "charge")
    return paginate(ctx, params, f"/v1/charges/{charge_id}/refunds", "refund", parent=charge_id)

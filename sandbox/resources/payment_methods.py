"""PaymentMethods (cards only), including Stripe's magic ``pm_card_*`` test ids."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

from .. import cards
from ..context import Ctx
from ..errors import InvalidRequest
from ..events import emit, emit_update
from ..objects.payments import payment_method as build_payment_method
from ..params import Params
from .common import load, paginate, route

TOKENS = {"tok_" + name[len("pm_card_"):]: key for name, key in cards.MAGIC_PAYMENT_METHODS.items()}


def _year_month(ctx: Ctx) -> tuple[int, int]:
    moment = datetime.fromtimestamp(ctx.now, tz=timezone.utc)
    return moment.year, moment.month


def card_of(ctx: Ctx, pm: dict[str, Any]) -> cards.CatalogueCard | None:
    """Which test card a stored PaymentMethod stands for (kept apart from the visible JSON)."""
    key = ctx.db.extra(pm["id"]).get("card")
    return cards.BY_KEY.get(key) if key else None


def store_new(ctx: Ctx, details: cards.CardDetails, *, customer: str | None = None, name: str | None = None,
              email: str | None = None, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    pm = build_payment_method(ctx.now, details, customer=None, name=name, email=email,
                              metadata=metadata or {})
    ctx.db.save(pm, extra={"card": details.key})
    return pm


def from_catalogue(ctx: Ctx, key: str) -> dict[str, Any]:
    year, _ = _year_month(ctx)
    return store_new(ctx, cards.details_for(key, 12, year + 3))


def resolve(ctx: Ctx, pm_id: str, param: str, attach_to: str | None = None,
            announce: bool = True) -> dict[str, Any]:
    """A PaymentMethod by id; a magic ``pm_card_*`` id becomes a real, new ``pm_`` object."""
    if pm_id in cards.MAGIC_PAYMENT_METHODS:
        pm = from_catalogue(ctx, cards.MAGIC_PAYMENT_METHODS[pm_id])
        if attach_to:
            pm = attach(ctx, pm, attach_to, announce=announce)
        return pm
    pm = ctx.db.get(pm_id)
    if pm is None or pm.get("object") != "payment_method":
        raise InvalidRequest(f"No such PaymentMethod: '{pm_id}'", code="resource_missing", param=param)
    return pm


def attach(ctx: Ctx, pm: dict[str, Any], customer_id: str, announce: bool = True) -> dict[str, Any]:
    if pm.get("customer") == customer_id:
        return pm
    if pm.get("customer"):
        raise InvalidRequest("The payment method you provided has already been attached to a customer.",
                             code="payment_method_unexpected_state", param="payment_method")
    card = card_of(ctx, pm)
    if card is not None and card.behaviour == cards.DECLINED:
        # Stripe verifies these cards on attach, and they fail there already.
        raise cards.decline(card.decline_code or "generic_decline")
    pm["customer"] = customer_id
    ctx.db.save(pm)
    if announce:
        emit(ctx, "payment_method.attached", pm)
    return pm


def detach(ctx: Ctx, pm: dict[str, Any]) -> dict[str, Any]:
    from . import customers

    customer_id = pm.get("customer")
    if not customer_id:
        raise InvalidRequest("The payment method you provided is not attached to a customer so detachment "
                             "is impossible.", code="payment_method_unexpected_state", param="payment_method")
    old = copy.deepcopy(pm)
    pm["customer"] = None
    ctx.db.save(pm)
    emit(ctx, "payment_method.detached", pm, {"customer": old["customer"]})
    customer = ctx.db.get(customer_id)
    if customer and not customer.get("deleted") and \
            customer["invoice_settings"]["default_payment_method"] == pm["id"]:
        customers.set_default_payment_method(ctx, customer, None)
    return pm


def details_from_params(ctx: Ctx, card: Params) -> cards.CardDetails:
    token = card.str("token")
    if token:
        if token not in TOKENS:
            raise InvalidRequest(f"No such token: '{token}'", code="resource_missing", param="card[token]")
        year, _ = _year_month(ctx)
        return cards.details_for(TOKENS[token], 12, year + 3)
    year, month = _year_month(ctx)
    return cards.check_card(
        card.str("number", required=True) or "",
        card.int("exp_month", required=True) or 0,
        card.int("exp_year", required=True) or 0,
        card.str("cvc"),
        year, month,
    )


@route("POST", "/payment_methods")
def create_payment_method(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["type", "card", "billing_details", "metadata", "customer", "payment_method"],
                          unsupported=["allow_redisplay"])
    if params.str("customer") and params.str("payment_method"):
        raise InvalidRequest("Cloning payment methods across accounts is not supported by the sandbox.",
                             param="customer")
    params.enum("type", ["card"], required=True)
    card = params.dict("card", required=True)
    assert card is not None
    card.reject_unknown(["number", "exp_month", "exp_year", "cvc", "token"], unsupported=["networks"])
    details = details_from_params(ctx, card)
    billing = params.dict("billing_details")
    name = billing.str("name") if billing else None
    email = billing.str("email") if billing else None
    pm = store_new(ctx, details, name=name or None, email=email or None, metadata=params.metadata() or {})
    return pm


@route("GET", "/payment_methods/<pm_id>", params=())
def retrieve_payment_method(ctx: Ctx, params: Params, pm_id: str) -> dict[str, Any]:
    if pm_id in cards.MAGIC_PAYMENT_METHODS:
        raise InvalidRequest("The sandbox creates a new PaymentMethod for a magic pm_card_* id only when it "
                             "is used (attached, charged); retrieve the pm_ it returned instead.",
                             code="resource_missing", status=404)
    return load(ctx, pm_id, "payment_method")


@route("POST", "/payment_methods/<pm_id>")
def update_payment_method(ctx: Ctx, params: Params, pm_id: str) -> dict[str, Any]:
    params.reject_unknown(["billing_details", "metadata", "card"], unsupported=["allow_redisplay"])
    pm = load(ctx, pm_id, "payment_method")
    old = copy.deepcopy(pm)
    metadata = params.metadata(pm["metadata"])
    if metadata is not None:
        pm["metadata"] = metadata
    billing = params.dict("billing_details")
    if billing is not None:
        for key in ("name", "email", "phone"):
            given, value = billing.nullable_str(key)
            if given:
                pm["billing_details"][key] = value
    card = params.dict("card")
    if card is not None:
        card.reject_unknown(["exp_month", "exp_year"], unsupported=["networks"])
        if "exp_month" in card:
            pm["card"]["exp_month"] = card.int("exp_month", minimum=1, maximum=12)
        if "exp_year" in card:
            pm["card"]["exp_year"] = card.int("exp_year")
    ctx.db.save(pm)
    emit_update(ctx, "payment_method.updated", old, pm)
    return pm


@route("POST", "/payment_methods/<pm_id>/attach")
def attach_payment_method(ctx: Ctx, params: Params, pm_id: str) -> dict[str, Any]:
    from .customers import load_live

    params.reject_unknown(["customer"], unsupported=["customer_account"])
    customer_id = params.str("customer", required=True) or ""
    load_live(ctx, customer_id, "customer")
    pm = resolve(ctx, pm_id, "payment_method")
    return attach(ctx, pm, customer_id)


@route("POST", "/payment_methods/<pm_id>/detach")
def detach_payment_method(ctx: Ctx, params: Params, pm_id: str) -> dict[str, Any]:
    params.reject_unknown([])
    return detach(ctx, load(ctx, pm_id, "payment_method"))


@route("GET", "/payment_methods")
def list_payment_methods(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["customer", "type", "limit", "starting_after", "ending_before"],
                          unsupported=["customer_account", "allow_redisplay"])
    customer = params.str("customer")
    params.enum("type", ["card"])
    return paginate(ctx, params, "/v1/payment_methods", "payment_method", customer=customer)

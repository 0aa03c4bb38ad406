"""Products and Prices."""

from __future__ import annotations

import copy
import re
from typing import Any

from ..context import Ctx
from ..errors import InvalidRequest
from ..events import emit, emit_update
from ..objects.catalog import price as build_price, product as build_product
from ..params import Params
from .common import load, load_param, paginate, route

INTERVALS = ("day", "week", "month", "year")


@route("POST", "/products")
def create_product(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["id", "name", "description", "active", "metadata", "url", "default_price_data", "type"],
                          unsupported=["package_dimensions", "images", "marketing_features", "shippable",
                                       "statement_descriptor", "tax_code", "unit_label"])
    product_id = params.str("id")
    if product_id:
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,250}", product_id):
            raise InvalidRequest("Invalid product id.", param="id")
        if ctx.db.get(product_id) is not None:
            raise InvalidRequest("Product already exists.", code="resource_already_exists", param="id")
    obj = build_product(ctx.now, product_id=product_id, name=params.str("name", required=True) or "",
                        description=params.str("description") or None, active=params.bool("active", True),
                        metadata=params.metadata() or {})
    ctx.db.save(obj)
    emit(ctx, "product.created", obj)
    default_price = params.dict("default_price_data")
    if default_price is not None:
        price = _create_price(ctx, default_price, obj)
        old = copy.deepcopy(obj)
        obj["default_price"] = price["id"]
        ctx.db.save(obj)
        emit_update(ctx, "product.updated", old, obj)
    return obj


@route("GET", "/products/<product_id>", params=())
def retrieve_product(ctx: Ctx, params: Params, product_id: str) -> dict[str, Any]:
    return load(ctx, product_id, "product")


@route("POST", "/products/<product_id>")
def update_product(ctx: Ctx, params: Params, product_id: str) -> dict[str, Any]:
    params.reject_unknown(["name", "description", "active", "metadata", "default_price", "url"],
                          unsupported=["images", "marketing_features", "statement_descriptor", "tax_code",
                                       "unit_label"])
    obj = load(ctx, product_id, "product")
    old = copy.deepcopy(obj)
    if "name" in params:
        obj["name"] = params.str("name", required=True)
    given, description = params.nullable_str("description")
    if given:
        obj["description"] = description
    if "active" in params:
        obj["active"] = params.bool("active")
    metadata = params.metadata(obj["metadata"])
    if metadata is not None:
        obj["metadata"] = metadata
    given, default_price = params.nullable_str("default_price")
    if given:
        if default_price:
            load_param(ctx, params, "default_price", "price")
        obj["default_price"] = default_price
    obj["updated"] = ctx.now
    ctx.db.save(obj)
    emit_update(ctx, "product.updated", old, obj)
    return obj


@route("GET", "/products")
def list_products(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["limit", "starting_after", "ending_before", "created", "active", "ids", "url"],
                          unsupported=["shippable"])
    active = params.bool("active")
    status = None if active is None else ("active" if active else "inactive")
    result = paginate(ctx, params, "/v1/products", "product", status=status)
    ids = params.str_list("ids")
    if ids:
        result["data"] = [p for p in result["data"] if p["id"] in ids]
    return result


def _create_price(ctx: Ctx, params: Params, product: dict[str, Any]) -> dict[str, Any]:
    unit_amount = params.int("unit_amount", minimum=0)
    if unit_amount is None:
        decimal = params.str("unit_amount_decimal")
        if decimal is None or not decimal.isdigit():
            raise InvalidRequest("Missing required param: unit_amount.", code="parameter_missing",
                                 param=params.name("unit_amount"))
        unit_amount = int(decimal)
    currency = (params.str("currency", required=True) or "").lower()
    if not re.fullmatch(r"[a-z]{3}", currency):
        raise InvalidRequest(f"Invalid currency: {currency}.", param=params.name("currency"))
    recurring = None
    recurring_params = params.dict("recurring")
    if recurring_params is not None:
        recurring_params.reject_unknown(["interval", "interval_count", "usage_type", "trial_period_days"],
                                        unsupported=["meter", "aggregate_usage"])
        interval = recurring_params.enum("interval", INTERVALS, required=True)
        count = recurring_params.int("interval_count", default=1, minimum=1)
        if recurring_params.str("usage_type", default="licensed") != "licensed":
            raise InvalidRequest("The sandbox only supports licensed (per-seat) prices.",
                                 param=recurring_params.name("usage_type"))
        recurring = {"interval": interval, "interval_count": count,
                     "trial_period_days": recurring_params.int("trial_period_days", minimum=0)}
    lookup_key = params.str("lookup_key") or None
    if lookup_key:
        holders = ctx.db.find("price", ref=lookup_key)
        if holders and not params.bool("transfer_lookup_key", False):
            raise InvalidRequest(
                f"A price (`{holders[0]['id']}`) already uses that lookup key.", param=params.name("lookup_key"))
        for holder in holders:
            old = copy.deepcopy(holder)
            holder["lookup_key"] = None
            ctx.db.save(holder)
            emit_update(ctx, "price.updated", old, holder)
    obj = build_price(ctx.now, product_id=product["id"], unit_amount=unit_amount, currency=currency,
                      recurring=recurring, lookup_key=lookup_key, nickname=params.str("nickname") or None,
                      active=params.bool("active", True), metadata=params.metadata() or {})
    ctx.db.save(obj)
    emit(ctx, "price.created", obj)
    return obj


@route("POST", "/prices")
def create_price(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["product", "product_data", "unit_amount", "unit_amount_decimal", "currency", "recurring",
                           "lookup_key", "transfer_lookup_key", "nickname", "active", "metadata", "billing_scheme"],
                          unsupported=["tax_behavior", "currency_options"])
    product = load_param(ctx, params, "product", "product")
    if product is None:
        data = params.dict("product_data")
        if data is None:
            raise InvalidRequest("Missing required param: product.", code="parameter_missing", param="product")
        product = build_product(ctx.now, product_id=data.str("id"), name=data.str("name", required=True) or "",
                                description=None, active=data.bool("active", True), metadata=data.metadata() or {})
        ctx.db.save(product)
        emit(ctx, "product.created", product)
    if params.str("billing_scheme", default="per_unit") != "per_unit":
        raise InvalidRequest("The sandbox only supports per_unit prices.", param="billing_scheme")
    return _create_price(ctx, params, product)


@route("GET", "/prices/<price_id>", params=())
def retrieve_price(ctx: Ctx, params: Params, price_id: str) -> dict[str, Any]:
    return load(ctx, price_id, "price")


@route("POST", "/prices/<price_id>")
def update_price(ctx: Ctx, params: Params, price_id: str) -> dict[str, Any]:
    params.reject_unknown(["active", "metadata", "nickname", "lookup_key", "transfer_lookup_key"],
                          unsupported=["tax_behavior", "currency_options"])
    obj = load(ctx, price_id, "price")
    old = copy.deepcopy(obj)
    if "active" in params:
        obj["active"] = params.bool("active")
    metadata = params.metadata(obj["metadata"])
    if metadata is not None:
        obj["metadata"] = metadata
    given, nickname = params.nullable_str("nickname")
    if given:
        obj["nickname"] = nickname
    given, lookup_key = params.nullable_str("lookup_key")
    if given:
        if lookup_key:
            holders = [p for p in ctx.db.find("price", ref=lookup_key) if p["id"] != price_id]
            if holders and not params.bool("transfer_lookup_key", False):
                raise InvalidRequest(f"A price (`{holders[0]['id']}`) already uses that lookup key.",
                                     param="lookup_key")
            for holder in holders:
                previous = copy.deepcopy(holder)
                holder["lookup_key"] = None
                ctx.db.save(holder)
                emit_update(ctx, "price.updated", previous, holder)
        obj["lookup_key"] = lookup_key
    ctx.db.save(obj)
    emit_update(ctx, "price.updated", old, obj)
    return obj


@route("GET", "/prices")
def list_prices(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["limit", "starting_after", "ending_before", "created", "active", "product",
                           "lookup_keys", "currency", "type", "recurring"])
    active = params.bool("active")
    status = None if active is None else ("active" if active else "inactive")
    lookup_keys = params.str_list("lookup_keys") or None
    result = paginate(ctx, params, "/v1/prices", "price", status=status, parent=params.str("product"),
                      ref_in=lookup_keys)
    currency, price_type = params.str("currency"), params.str("type")
    if currency or price_type:
        # Rare filters: applied to the page, documented in the README.
        result["data"] = [p for p in result["data"]
                          if (not currency or p["currency"] == currency.lower())
                          and (not price_type or p["type"] == price_type)]
    return result

"""Customers: create, retrieve, update, delete, list, and their payment methods."""

from __future__ import annotations

from typing import Any

from .. import clock
from ..context import Ctx
from ..errors import InvalidRequest, not_supported
from ..events import emit, emit_update
from ..objects.customers import customer as build_customer, deleted_customer, tax_id as build_tax_id
from ..params import Params
from . import payment_methods
from .common import LIST_PARAMS, includable, list_of, load, paginate, route

WRITABLE = ("email", "name", "description", "phone", "metadata", "invoice_settings", "payment_method",
            "preferred_locales", "balance", "invoice_prefix", "address")
CREATE_ONLY = ("test_clock", "tax_id_data")
# Stripe takes these; the sandbox refuses them (naming itself) rather than ignore them.
UNSUPPORTED = ("shipping", "tax_exempt", "source", "coupon", "promotion_code", "tax", "next_invoice_sequence",
               "cash_balance", "validate")
ADDRESS_KEYS = ("city", "country", "line1", "line2", "postal_code", "state")
# Brazilian tax ids (what the portal uses), by the digits each has.
TAX_ID_DIGITS = {"br_cpf": 11, "br_cnpj": 14}


def load_live(ctx: Ctx, customer_id: str, param: str = "customer") -> dict[str, Any]:
    obj = load(ctx, customer_id, "customer", param)
    if obj.get("deleted"):
        raise InvalidRequest(f"No such customer: '{customer_id}'", code="resource_missing", param=param)
    return obj


def create(ctx: Ctx, *, email: str | None, name: str | None = None, metadata: dict[str, str] | None = None,
           description: str | None = None, phone: str | None = None) -> dict[str, Any]:
    """Create and announce a customer (also used by the hosted checkout)."""
    obj = build_customer(ctx.now, email=email, name=name, description=description, phone=phone,
                         metadata=metadata or {}, default_payment_method=None)
    ctx.db.save(obj)
    emit(ctx, "customer.created", obj)
    return obj


def set_default_payment_method(ctx: Ctx, customer: dict[str, Any], pm_id: str | None) -> dict[str, Any]:
    old = _copy(customer)
    customer["invoice_settings"]["default_payment_method"] = pm_id
    ctx.db.save(customer)
    emit_update(ctx, "customer.updated", old, customer)
    return customer


def change_balance(ctx: Ctx, customer: dict[str, Any], new_balance: int) -> dict[str, Any]:
    if customer["balance"] == new_balance:
        return customer
    old = _copy(customer)
    customer["balance"] = new_balance
    ctx.db.save(customer)
    emit_update(ctx, "customer.updated", old, customer)
    return customer


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    import copy

    return copy.deepcopy(obj)


def _apply(ctx: Ctx, params: Params, obj: dict[str, Any],
           attached: list[dict[str, Any]] | None = None) -> None:
    """Apply writable params; with ``attached`` given, attachment events are left to the caller."""
    for key in ("email", "name", "description", "phone"):
        given, value = params.nullable_str(key)
        if given:
            obj[key] = value
    metadata = params.metadata(obj["metadata"])
    if metadata is not None:
        obj["metadata"] = metadata
    if "balance" in params:
        obj["balance"] = params.int("balance")
    if "invoice_prefix" in params:
        prefix = params.str("invoice_prefix") or ""
        if not (3 <= len(prefix) <= 12 and prefix.isalnum() and prefix.upper() == prefix):
            raise InvalidRequest("Invoice prefix must be 3-12 uppercase letters or numbers.",
                                 param="invoice_prefix")
        obj["invoice_prefix"] = prefix
    if "preferred_locales" in params:
        obj["preferred_locales"] = params.str_list("preferred_locales")
    if "address" in params:
        address = params.dict("address")
        if address is None:  # address="" unsets it
            obj["address"] = None
        else:
            address.reject_unknown(ADDRESS_KEYS)
            obj["address"] = {key: address.str(key) or None for key in ADDRESS_KEYS}
    attach_id = params.str("payment_method")
    if attach_id:
        pm = payment_methods.resolve(ctx, attach_id, "payment_method")
        pm = payment_methods.attach(ctx, pm, obj["id"], announce=attached is None)
        if attached is not None:
            attached.append(pm)
    settings = params.dict("invoice_settings")
    if settings is not None:
        settings.reject_unknown(["default_payment_method", "footer"],
                                unsupported=["custom_fields", "rendering_options"])
        given, pm_id = settings.nullable_str("default_payment_method")
        if given:
            if pm_id:
                pm = payment_methods.resolve(ctx, pm_id, "invoice_settings[default_payment_method]",
                                             attach_to=obj["id"], announce=attached is None)
                if attached is not None and pm.get("customer") == obj["id"] and pm_id != pm["id"]:
                    attached.append(pm)
                if pm.get("customer") != obj["id"]:
                    raise InvalidRequest(
                        f"The customer does not have a payment method with the ID {pm_id}. The payment "
                        "method must be attached to the customer.",
                        param="invoice_settings[default_payment_method]")
                pm_id = pm["id"]
            obj["invoice_settings"]["default_payment_method"] = pm_id
        if "footer" in settings:
            obj["invoice_settings"]["footer"] = settings.str("footer") or None


@route("POST", "/customers")
def create_customer(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(WRITABLE + CREATE_ONLY, unsupported=UNSUPPORTED)
    tax_ids = _tax_id_data(params)  # checked before anything is made
    obj = build_customer(ctx.now, email=None, name=None, description=None, phone=None, metadata={},
                         default_payment_method=None)
    if "test_clock" in params:  # ctx.now is already the clock's time (the server resolved it)
        test_clock = params.str("test_clock", required=True)
        if clock.load_clock(ctx.db, test_clock) is None:
            raise InvalidRequest(f"No such test_clock: '{test_clock}'", code="resource_missing", param="test_clock")
        obj["test_clock"] = test_clock
    ctx.db.save(obj)  # saved first: attaching a payment method needs the customer to exist
    attached: list[dict[str, Any]] = []
    _apply(ctx, params, obj, attached)
    ctx.db.save(obj)
    emit(ctx, "customer.created", obj)
    for pm in attached:  # Stripe reports attachments after the creation
        emit(ctx, "payment_method.attached", pm)
    for kind, value in tax_ids:
        tax_id = build_tax_id(ctx.now, customer=obj["id"], kind=kind, value=value)
        ctx.db.save(tax_id)
        emit(ctx, "customer.tax_id.created", tax_id)
    return obj


def _tax_id(params: Params) -> tuple[str, str]:
    """One ``type`` and ``value``: a Brazilian CPF or CNPJ, checked by its number of digits."""
    params.reject_unknown(["type", "value"])
    kind = params.str("type", required=True)
    value = params.str("value", required=True)
    assert kind is not None and value is not None
    if kind not in TAX_ID_DIGITS:
        raise not_supported(params.name("type"), f"={kind} (only {', '.join(TAX_ID_DIGITS)})")
    if sum(ch.isdigit() for ch in value) != TAX_ID_DIGITS[kind] or not set(value) <= set("0123456789./- "):
        raise InvalidRequest(f"Invalid value for {kind}.", code="tax_id_invalid", param=params.name("value"))
    return kind, value


def _tax_id_data(params: Params) -> list[tuple[str, str]]:
    """``tax_id_data[i][type|value]`` on create."""
    found = []
    for entry in params.list_of_dicts("tax_id_data"):
        found.append(_tax_id(entry))
    return found


@route("GET", "/customers/<customer_id>", params=())
def retrieve_customer(ctx: Ctx, params: Params, customer_id: str) -> dict[str, Any]:
    return load(ctx, customer_id, "customer")


@route("POST", "/customers/<customer_id>")
def update_customer(ctx: Ctx, params: Params, customer_id: str) -> dict[str, Any]:
    params.reject_unknown(WRITABLE, unsupported=UNSUPPORTED)
    obj = load_live(ctx, customer_id, "id")
    old = _copy(obj)
    _apply(ctx, params, obj)
    ctx.db.save(obj)
    emit_update(ctx, "customer.updated", old, obj)
    return obj


@route("DELETE", "/customers/<customer_id>", params=())
def delete_customer(ctx: Ctx, params: Params, customer_id: str) -> dict[str, Any]:
    from . import subscriptions

    obj = load_live(ctx, customer_id, "id")
    # Stripe cancels a deleted customer's subscriptions at once.
    for sub in ctx.db.find("subscription", customer=customer_id):
        if sub["status"] not in ("canceled", "incomplete_expired"):
            subscriptions.cancel_now(ctx, sub, reason="cancellation_requested")
    stub = deleted_customer(customer_id)
    ctx.db.save(stub, due_at=None)
    emit(ctx, "customer.deleted", obj)
    return stub


@route("GET", "/customers")
def list_customers(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["limit", "starting_after", "ending_before", "created", "email", "test_clock"])
    email = params.str("email")
    return paginate(ctx, params, "/v1/customers", "customer", status="active", ref=email,
                    clock=params.str("test_clock"))


@route("GET", "/customers/<customer_id>/payment_methods", params=LIST_PARAMS + ("type",))
def list_customer_payment_methods(ctx: Ctx, params: Params, customer_id: str) -> dict[str, Any]:
    load_live(ctx, customer_id, "customer")
    pm_type = params.str("type")
    if pm_type and pm_type != "card":
        return list_of(f"/v1/customers/{customer_id}/payment_methods", [], params)
    return paginate(ctx, params, f"/v1/customers/{customer_id}/payment_methods", "payment_method",
                    customer=customer_id)


@route("GET", "/customers/<customer_id>/payment_methods/<pm_id>", params=())
def retrieve_customer_payment_method(ctx: Ctx, params: Params, customer_id: str, pm_id: str) -> dict[str, Any]:
    load_live(ctx, customer_id, "customer")
    pm = load(ctx, pm_id, "payment_method")
    if pm.get("customer") != customer_id:
        raise InvalidRequest(f"No such PaymentMethod: '{pm_id}'", code="resource_missing", param="payment_method",
                             status=404)
    return pm


@includable("customer", "subscriptions")
def _subscriptions(ctx: Ctx, customer: dict[str, Any]) -> dict[str, Any]:
    """``expand[]=subscriptions``: the customer's subscriptions that have not ended, newest first."""
    subs = [sub for sub in ctx.db.find("subscription", customer=customer["id"])
            if sub["status"] not in ("canceled", "incomplete_expired")]
    subs.reverse()
    return {"object": "list", "data": subs[:10], "has_more": len(subs) > 10,
            "url": f"/v1/customers/{customer['id']}/subscriptions"}


@includable("customer", "tax_ids")
def _tax_ids(ctx: Ctx, customer: dict[str, Any]) -> dict[str, Any]:
    """``expand[]=tax_ids``: the customer's tax ids, newest first."""
    found = list(reversed(ctx.db.find("tax_id", customer=customer["id"])))
    return {"object": "list", "data": found[:10], "has_more": len(found) > 10,
            "url": f"/v1/customers/{customer['id']}/tax_ids"}


@route("POST", "/customers/<customer_id>/tax_ids")
def create_tax_id(ctx: Ctx, params: Params, customer_id: str) -> dict[str, Any]:
    """Add a tax id to an existing customer (Stripe's way after creation: ``tax_id_data`` is create-only)."""
    load_live(ctx, customer_id, "customer")
    kind, value = _tax_id(params)
    tax_id = build_tax_id(ctx.now, customer=customer_id, kind=kind, value=value)
    ctx.db.save(tax_id)
    emit(ctx, "customer.tax_id.created", tax_id)
    return tax_id


@route("DELETE", "/customers/<customer_id>/tax_ids/<tax_id>", params=())
def delete_tax_id(ctx: Ctx, params: Params, customer_id: str, tax_id: str) -> dict[str, Any]:
    load_live(ctx, customer_id, "customer")
    obj = load(ctx, tax_id, "tax_id")
    if obj["customer"] != customer_id:
        raise InvalidRequest(f"No such tax_id: '{tax_id}'", code="resource_missing", param="id")
    ctx.db.delete(tax_id)
    emit(ctx, "customer.tax_id.deleted", obj)
    return {"id": tax_id, "object": "tax_id", "deleted": True}


@route("GET", "/customers/<customer_id>/tax_ids", params=LIST_PARAMS)
def list_tax_ids(ctx: Ctx, params: Params, customer_id: str) -> dict[str, Any]:
    load_live(ctx, customer_id, "customer")
    found = list(reversed(ctx.db.find("tax_id", customer=customer_id)))
    return list_of(f"/v1/customers/{customer_id}/tax_ids", found, params)

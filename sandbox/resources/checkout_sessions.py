"""Checkout Sessions (hosted at ``/checkout/<id>``, see ``pages.py``)."""

from __future__ import annotations

import copy
from typing import Any

from ..cards import CardDetails
from ..clock import DAY
from ..context import Ctx
from ..errors import InvalidRequest, not_supported
from ..events import emit
from ..objects.checkout import checkout_session as build_session, customer_details, session_line_item
from ..params import Params
from . import customers, payment_intents, payment_methods, setup_intents, subscriptions
from .common import LIST_PARAMS, list_of, load, load_param, paginate, route

MODES = ("payment", "setup", "subscription")


def _line_items(ctx: Ctx, params: Params, mode: str) -> list[dict[str, Any]]:
    items = []
    for entry in params.list_of_dicts("line_items", required=mode != "setup"):
        entry.reject_unknown(["price", "quantity", "metadata"],
                             unsupported=["adjustable_quantity", "dynamic_tax_rates", "price_data", "tax_rates"])
        price_id = entry.str("price", required=True)
        price = ctx.db.get(price_id or "")
        if price is None or price.get("object") != "price":
            raise InvalidRequest(f"No such price: '{price_id}'", code="resource_missing", param=entry.name("price"))
        if not price["active"]:
            raise InvalidRequest(f"The price `{price_id}` is not active.", param=entry.name("price"))
        if mode == "subscription" and not price["recurring"]:
            raise InvalidRequest("You must specify at least one recurring price in `subscription` mode.",
                                 param=entry.name("price"))
        if mode == "payment" and price["recurring"]:
            raise InvalidRequest("You specified `payment` mode but passed a recurring price. Either switch to "
                                 "`subscription` mode or use only one-time prices.", param=entry.name("price"))
        quantity = entry.int("quantity", default=1, minimum=1) or 1
        product = ctx.db.get(price["product"]) or {"name": price["product"]}
        items.append(session_line_item(price, quantity, product["name"]))
    if mode == "setup" and items:
        raise InvalidRequest("line_items cannot be used in setup mode.", param="line_items")
    currencies = {item["currency"] for item in items}
    if len(currencies) > 1:
        raise InvalidRequest("All line items must use the same currency.", param="line_items")
    return items


@route("POST", "/checkout/sessions")
def create_session(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["mode", "line_items", "customer", "customer_email", "success_url", "cancel_url",
                           "client_reference_id", "metadata", "subscription_data", "setup_intent_data",
                           "payment_intent_data", "expires_at", "currency", "payment_method_types", "locale",
                           "ui_mode", "custom_text"],
                          unsupported=["return_url", "allow_promotion_codes", "billing_address_collection",
                                       "customer_creation", "customer_update", "automatic_tax", "tax_id_collection",
                                       "consent_collection", "custom_fields", "discounts",
                                       "invoice_creation", "payment_method_collection", "phone_number_collection",
                                       "submit_type", "saved_payment_method_options", "payment_method_options",
                                       "shipping_address_collection", "shipping_options", "redirect_on_completion",
                                       "after_expiration", "adaptive_pricing", "payment_method_configuration",
                                       "customer_account"])
    mode = params.enum("mode", MODES, required=True) or "payment"
    customer = load_param(ctx, params, "customer", "customer")
    if customer and customer.get("deleted"):
        raise InvalidRequest(f"No such customer: '{customer['id']}'", code="resource_missing", param="customer")
    customer_email = params.str("customer_email") or None
    if customer and customer_email:
        raise InvalidRequest("You may only specify one of these parameters: customer, customer_email.",
                             param="customer_email")
    # Stripe's ui_mode values (endive); the sandbox serves only the hosted page.
    ui_mode = params.enum("ui_mode", ["elements", "embedded_page", "hosted_page"], default="hosted_page")
    if ui_mode != "hosted_page":
        raise not_supported("ui_mode", f"={ui_mode} (only hosted_page)")
    success_url = params.str("success_url", required=True)
    items = _line_items(ctx, params, mode)
    currency = (params.str("currency") or "").lower() or (items[0]["currency"] if items else None)
    expires_at = params.int("expires_at", minimum=0)
    if expires_at is not None and not ctx.now + 1800 <= expires_at <= ctx.now + DAY:
        raise InvalidRequest("The `expires_at` timestamp must be between 30 minutes and 24 hours from the "
                             "Checkout Session's creation.", param="expires_at")
    expires_at = expires_at or ctx.now + DAY
    amount = sum(item["amount_total"] for item in items) if items else None
    session = build_session(ctx.now, mode=mode, base_url=ctx.base_url, customer=customer["id"] if customer else None,
                            customer_email=customer_email, success_url=success_url,
                            cancel_url=params.str("cancel_url") or None,
                            client_reference_id=params.str("client_reference_id") or None,
                            metadata=params.metadata() or {}, currency=currency,
                            amount_total=amount, expires_at=expires_at)
    session["locale"] = params.str("locale") or None  # the hosted page's language (pages.py, locales.py)
    extra: dict[str, Any] = {"line_items": items}
    custom_text = params.dict("custom_text")
    if custom_text is not None:
        custom_text.reject_unknown(["submit"], unsupported=["after_submit", "shipping_address",
                                                            "terms_of_service_acceptance"])
        submit = custom_text.dict("submit")
        if submit is not None:
            submit.reject_unknown(["message"])
            message = submit.str("message", required=True)
            if len(message) > 1200:
                raise InvalidRequest("custom_text[submit][message] must be at most 1200 characters.",
                                     param="custom_text[submit][message]")
            session["custom_text"]["submit"] = {"message": message}
    sub_data = params.dict("subscription_data")
    if sub_data is not None:
        if mode != "subscription":
            raise InvalidRequest("subscription_data can only be used in subscription mode.", param="subscription_data")
        sub_data.reject_unknown(["metadata", "trial_period_days", "trial_end", "description"],
                                unsupported=["default_tax_rates", "trial_settings", "billing_cycle_anchor",
                                             "proration_behavior", "application_fee_percent", "invoice_settings",
                                             "billing_mode", "pending_invoice_item_interval", "on_behalf_of",
                                             "transfer_data"])
        days = sub_data.int("trial_period_days", minimum=1, maximum=730)
        trial_end = sub_data.int("trial_end", minimum=ctx.now + 2 * DAY) if "trial_end" in sub_data else None
        extra["subscription_data"] = {"metadata": sub_data.metadata() or {}, "trial_period_days": days,
                                      "trial_end": trial_end, "description": sub_data.str("description") or None}
    seti_data = params.dict("setup_intent_data")
    if seti_data is not None:
        seti_data.reject_unknown(["metadata", "description"], unsupported=["on_behalf_of"])
        extra["setup_intent_data"] = {"metadata": seti_data.metadata() or {},
                                      "description": seti_data.str("description") or None}
    pi_data = params.dict("payment_intent_data")
    if pi_data is not None:
        pi_data.reject_unknown(["metadata", "description", "setup_future_usage"],
                               unsupported=["capture_method", "receipt_email", "statement_descriptor",
                                            "statement_descriptor_suffix", "shipping", "transfer_group",
                                            "application_fee_amount", "on_behalf_of", "transfer_data"])
        extra["payment_intent_data"] = {"metadata": pi_data.metadata() or {},
                                        "description": pi_data.str("description") or None,
                                        "setup_future_usage": pi_data.str("setup_future_usage") or None}
    ctx.db.save(session, extra=extra, due_at=expires_at)
    return session


def expire(ctx: Ctx, session: dict[str, Any]) -> dict[str, Any]:
    old = copy.deepcopy(session)
    session["status"] = "expired"
    session["url"] = None
    ctx.db.save(session, due_at=None)
    emit(ctx, "checkout.session.expired", session, {"status": old["status"], "url": old["url"]})
    return session


def process_due(ctx: Ctx, session: dict[str, Any]) -> None:
    if session["status"] == "open" and ctx.now >= session["expires_at"]:
        expire(ctx, session)
    else:
        ctx.db.set_due(session["id"], None)


def trial_end_for(ctx: Ctx, extra: dict[str, Any]) -> int | None:
    data = extra.get("subscription_data") or {}
    if data.get("trial_end"):
        return data["trial_end"]
    if data.get("trial_period_days"):
        return ctx.now + data["trial_period_days"] * DAY
    return None


def complete(ctx: Ctx, session: dict[str, Any], card: CardDetails, *, email: str | None, name: str | None,
             authenticated: bool = False) -> dict[str, Any]:
    """What submitting the hosted form does. Any card error propagates and the caller rolls back."""
    extra = ctx.db.extra(session["id"])
    customer = ctx.db.get(session["customer"]) if session["customer"] else None
    if customer is None and session["mode"] != "payment":
        # Stripe creates the customer in subscription mode (and, with customer_creation, in setup mode).
        customer = customers.create(ctx, email=email or session["customer_email"], name=name)
    pm = payment_methods.store_new(ctx, card, name=name, email=email)
    if session["mode"] == "subscription":
        assert customer is not None
        pm = payment_methods.attach(ctx, pm, customer["id"])
        customer = customers.set_default_payment_method(ctx, customers.load_live(ctx, customer["id"]), pm["id"])
        sub_data = extra.get("subscription_data") or {}
        sub = subscriptions.create_subscription_for(
            ctx, customer=customer, entries=[(item["price"], item["quantity"]) for item in extra["line_items"]],
            default_payment_method=pm["id"], metadata=sub_data.get("metadata") or {},
            trial_end=trial_end_for(ctx, extra), payment_behavior="error_if_incomplete", off_session=False,
            authenticated=authenticated, description=sub_data.get("description"))
        session.update(subscription=sub["id"], invoice=sub["latest_invoice"], payment_status="paid")
    elif session["mode"] == "setup":
        assert customer is not None
        seti_data = extra.get("setup_intent_data") or {}
        seti = setup_intents.create(ctx, customer=customer["id"], payment_method=pm["id"],
                                    metadata=seti_data.get("metadata") or {},
                                    description=seti_data.get("description"))
        seti = setup_intents.confirm(ctx, seti, authenticated=authenticated)
        session["setup_intent"] = seti["id"]
    else:
        pi_data = extra.get("payment_intent_data") or {}
        if customer is not None:
            pm = payment_methods.attach(ctx, pm, customer["id"])
        pi, error = payment_intents.charge_now(
            ctx, amount=session["amount_total"], currency=session["currency"],
            customer=customer["id"] if customer else None, pm_id=pm["id"], description=pi_data.get("description"),
            off_session=False, metadata=pi_data.get("metadata"), authenticated=authenticated,
            setup_future_usage=pi_data.get("setup_future_usage"))
        if error is not None:
            error.keep_changes = False
            raise error
        session.update(payment_intent=pi["id"], payment_status="paid")
    session["status"] = "complete"
    session["customer"] = customer["id"] if customer else None
    session["customer_details"] = customer_details(email or (customer or {}).get("email"), name)
    session["url"] = None
    ctx.db.save(session, due_at=None)
    emit(ctx, "checkout.session.completed", session)
    return session


@route("GET", "/checkout/sessions/<session_id>", params=())
def retrieve_session(ctx: Ctx, params: Params, session_id: str) -> dict[str, Any]:
    return load(ctx, session_id, "checkout.session")


@route("GET", "/checkout/sessions/<session_id>/line_items", params=LIST_PARAMS)
def list_session_line_items(ctx: Ctx, params: Params, session_id: str) -> dict[str, Any]:
    load(ctx, session_id, "checkout.session")
    items = ctx.db.extra(session_id).get("line_items") or []
    return list_of(f"/v1/checkout/sessions/{session_id}/line_items", items, params)


@route("POST", "/checkout/sessions/<session_id>")
def update_session(ctx: Ctx, params: Params, session_id: str) -> dict[str, Any]:
    params.reject_unknown(["metadata", "line_items"], unsupported=["collected_information", "shipping_options"])
    session = load(ctx, session_id, "checkout.session")
    metadata = params.metadata(session["metadata"])
    if metadata is not None:
        session["metadata"] = metadata
        ctx.db.save(session)
    return session


@route("POST", "/checkout/sessions/<session_id>/expire")
def expire_session(ctx: Ctx, params: Params, session_id: str) -> dict[str, Any]:
    params.reject_unknown([])
    session = load(ctx, session_id, "checkout.session")
    if session["status"] != "open":
        raise InvalidRequest(f"Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout "
                             f"Session has a status of \"{session['status']}\".",
                             code="checkout_session_unexpected_state")
    return expire(ctx, session)


@route("GET", "/checkout/sessions")
def list_sessions(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["customer", "status", "payment_intent", "subscription", "created", "limit",
                           "starting_after", "ending_before"],
                          unsupported=["payment_link", "customer_account", "customer_details"])
    result = paginate(ctx, params, "/v1/checkout/sessions", "checkout.session", customer=params.str("customer"),
                      status=params.enum("status", ["open", "complete", "expired"]))
    for key in ("payment_intent", "subscription"):
        wanted = params.str(key)
        if wanted:
            result["data"] = [s for s in result["data"] if s.get(key) == wanted]
    return result

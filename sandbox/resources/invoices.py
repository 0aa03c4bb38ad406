"""Invoices: building, finalizing, collecting, voiding, previewing; and invoice payments.

Lifecycle: draft → open (finalize: number, balance applied, PaymentIntent made)
→ paid | uncollectible | void. Collection charges the invoice's PaymentIntent
with the default payment method of the invoice, else the subscription, else
the customer. Failed attempts are recorded (attempt_count, events) and never
retried by the sandbox: the kernel owns retries (as if Smart Retries were off).
"""

from __future__ import annotations

import copy
from typing import Any

from ..context import Ctx
from ..errors import CardError, InvalidRequest, StripeError
from ..events import changes, emit
from ..ids import new_id
from ..locales import customer_locale, human_date, text
from ..money import format_price
from ..objects import empty_list
from ..objects.invoices import (invoice as build_invoice, invoice_payment as build_invoice_payment, line_item,
                                manual_line, one_off_item)
from ..params import Params
from . import payment_intents, payment_methods
from .common import LIST_PARAMS, list_of, load, load_param, paginate, route

STATUSES = ("draft", "open", "paid", "uncollectible", "void")

# Stripe finalizes (and charges) a subscription renewal about an hour after creating its draft.
AUTO_FINALIZE_DELAY = 3600


# -- lines --------------------------------------------------------------------------------------
def product_name(ctx: Ctx, price: dict[str, Any]) -> str:
    product = ctx.db.get(price["product"])
    return product["name"] if product else price["product"]


def line_locale(ctx: Ctx, sub: dict[str, Any]) -> str:
    """The language Stripe writes this subscription's invoice lines in: its customer's preferred one."""
    return customer_locale(ctx.db.get(sub["customer"]) if sub.get("customer") else None)


def period_line(ctx: Ctx, sub: dict[str, Any], item: dict[str, Any], start: int, end: int, *,
                trial: bool = False, line_id: str | None = None) -> dict[str, Any]:
    price, quantity = item["price"], item["quantity"]
    name = product_name(ctx, price)
    locale = line_locale(ctx, sub)
    if trial:
        description, amount = text("trial_period", locale, name=name), 0
    else:
        amount = price["unit_amount"] * quantity
        description = text("period_line", locale, quantity=quantity, name=name,
                           price=format_price(price["unit_amount"], price["currency"], price["recurring"], locale))
    return line_item(invoice_id=None, amount=amount, currency=price["currency"], description=description,
                     period_start=start, period_end=end, price=price, quantity=quantity,
                     subscription_id=sub["id"], subscription_item_id=item["id"], proration=False,
                     line_id=line_id)


def proration_line(ctx: Ctx, sub: dict[str, Any], item_id: str, price: dict[str, Any], quantity: int,
                   amount: int, at: int, end: int, *, credit: bool, line_id: str | None = None) -> dict[str, Any]:
    name = product_name(ctx, price)
    if quantity != 1:
        name = f"{quantity} × {name}"
    locale = line_locale(ctx, sub)
    description = text("unused_time" if credit else "remaining_time", locale, name=name, date=human_date(at, locale))
    return line_item(invoice_id=None, amount=amount, currency=price["currency"], description=description,
                     period_start=at, period_end=end, price=price, quantity=quantity,
                     subscription_id=sub["id"], subscription_item_id=item_id, proration=True,
                     line_id=line_id)


def pending_items(ctx: Ctx, subscription_id: str) -> list[dict[str, Any]]:
    return [ii for ii in ctx.db.find("invoiceitem", subscription=subscription_id) if ii["invoice"] is None]


def line_from_pending(ctx: Ctx, ii: dict[str, Any]) -> dict[str, Any]:
    if not ii["proration"]:
        return manual_line(ii, None)
    price = ctx.db.get(ii["pricing"]["price_details"]["price"]) or {}
    details = ii["parent"]["subscription_details"]
    return line_item(invoice_id=None, amount=ii["amount"], currency=ii["currency"], description=ii["description"],
                     period_start=ii["period"]["start"], period_end=ii["period"]["end"],
                     price=price or {"id": ii["pricing"]["price_details"]["price"],
                                     "product": ii["pricing"]["price_details"]["product"],
                                     "unit_amount": ii["amount"]},
                     quantity=ii["quantity"], subscription_id=details["subscription"],
                     subscription_item_id=details["subscription_item"], proration=ii["proration"],
                     invoice_item_id=ii["id"])


# -- building -----------------------------------------------------------------------------------
def assemble(ctx: Ctx, *, customer: dict[str, Any], sub: dict[str, Any] | None, billing_reason: str,
             lines: list[dict[str, Any]], period_start: int, period_end: int, currency: str,
             preview: bool = False) -> dict[str, Any]:
    """An unsaved draft invoice with its lines and totals."""
    invoice_id = f"upcoming_{new_id('in')}" if preview else new_id("in")
    inv = build_invoice(ctx.now, invoice_id=invoice_id, customer=customer, currency=currency,
                        subscription_id=sub["id"] if sub else None,
                        subscription_metadata=sub["metadata"] if sub else None,
                        billing_reason=billing_reason, period_start=period_start, period_end=period_end,
                        default_payment_method=None, base_url=ctx.base_url)
    # Who the invoice is made out to, as the customer holds it (Stripe copies these until finalization).
    inv["customer_address"] = customer.get("address")
    inv["customer_tax_ids"] = [{"type": t["type"], "value": t["value"]}
                               for t in ctx.db.find("tax_id", customer=customer["id"])]
    for line in lines:
        line["invoice"] = invoice_id
    inv["lines"]["data"] = lines
    total = sum(line["amount"] for line in lines)
    inv.update(subtotal=total, subtotal_excluding_tax=total, total=total, total_excluding_tax=total,
               amount_due=max(total, 0), amount_remaining=max(total, 0))
    if preview:
        _apply_balance(inv, customer["balance"])
    return inv


def _apply_balance(inv: dict[str, Any], balance: int) -> int:
    """Apply the customer's balance as Stripe does at finalization; returns the new balance."""
    combined = inv["total"] + balance
    inv["starting_balance"] = balance
    if combined >= 0:
        inv["amount_due"] = combined
        inv["ending_balance"] = 0
    else:
        inv["amount_due"] = 0
        inv["ending_balance"] = combined
    inv["amount_remaining"] = inv["amount_due"] - inv["amount_paid"]
    return inv["ending_balance"]


def create(ctx: Ctx, *, customer: dict[str, Any], sub: dict[str, Any] | None, billing_reason: str,
           lines: list[dict[str, Any]], period_start: int, period_end: int, currency: str,
           include_pending: bool = True, finalize_later: bool = False) -> dict[str, Any]:
    """Create a draft invoice (taking the subscription's pending invoice items) and announce it.

    ``finalize_later``: a renewal stays a draft for an hour, then the clock finalizes and charges it
    (``process_due``), as Stripe does with subscription invoices.
    """
    pending = pending_items(ctx, sub["id"]) if (sub and include_pending) else []
    all_lines = [line_from_pending(ctx, ii) for ii in pending] + lines
    inv = assemble(ctx, customer=customer, sub=sub, billing_reason=billing_reason, lines=all_lines,
                   period_start=period_start, period_end=period_end, currency=currency)
    if finalize_later:
        inv["automatically_finalizes_at"] = ctx.now + AUTO_FINALIZE_DELAY
    ctx.db.save(inv, due_at=inv["automatically_finalizes_at"])
    for ii in pending:
        ii["invoice"] = inv["id"]
        ctx.db.save(ii)
    emit(ctx, "invoice.created", inv)
    return inv


def process_due(ctx: Ctx, inv: dict[str, Any]) -> None:
    """An hour after a renewal draft was made: finalize it and charge it off-session (called by the clock)."""
    ctx.db.set_due(inv["id"], None)
    if inv["status"] != "draft" or not inv["auto_advance"]:
        return
    inv = finalize(ctx, inv)
    if inv["status"] == "open":
        collect(ctx, inv, off_session=True)


def finalize(ctx: Ctx, inv: dict[str, Any]) -> dict[str, Any]:
    """draft → open: number, customer balance, and the PaymentIntent that will collect it."""
    from . import customers

    if inv["status"] != "draft":
        raise InvalidRequest("This invoice is already finalized, you can't re-finalize a non-draft invoice.",
                             code="invoice_not_editable", param=None)
    customer = load(ctx, inv["customer"], "customer")
    new_balance = _apply_balance(inv, customer["balance"])
    customer = customers.change_balance(ctx, customer, new_balance)
    inv["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
    customer["next_invoice_sequence"] += 1
    ctx.db.save(customer)
    inv["status"] = "open"
    inv["automatically_finalizes_at"] = None
    inv["status_transitions"]["finalized_at"] = ctx.now
    inv["effective_at"] = ctx.now
    if inv["amount_due"] > 0:
        pi = payment_intents.create(ctx, amount=inv["amount_due"], currency=inv["currency"],
                                    customer=inv["customer"], payment_method=None,
                                    description=_describe(inv), setup_future_usage=None)
        payment = build_invoice_payment(ctx.now, invoice_obj=inv, payment_intent_id=pi["id"],
                                        amount=inv["amount_due"])
        ctx.db.save(payment)
        inv["payments"]["data"] = [payment]
    ctx.db.save(inv, due_at=None)
    emit(ctx, "invoice.finalized", inv)
    if inv["amount_due"] == 0:
        _mark_paid(ctx, inv, None, None)
    return ctx.db.get(inv["id"]) or inv


def _describe(inv: dict[str, Any]) -> str:
    return {"subscription_create": "Subscription creation", "subscription_cycle": "Subscription update",
            "subscription_update": "Subscription update"}.get(inv["billing_reason"], "Invoice payment")


def default_payment_method(ctx: Ctx, inv: dict[str, Any]) -> str | None:
    if inv.get("default_payment_method"):
        return inv["default_payment_method"]
    sub_id = subscription_id(inv)
    if sub_id:
        sub = ctx.db.get(sub_id)
        if sub and sub.get("default_payment_method"):
            return sub["default_payment_method"]
    customer = ctx.db.get(inv["customer"])
    if customer and not customer.get("deleted"):
        return customer["invoice_settings"]["default_payment_method"]
    return None


def subscription_id(inv: dict[str, Any]) -> str | None:
    parent = inv.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return details.get("subscription")


def collect(ctx: Ctx, inv: dict[str, Any], *, pm_id: str | None = None, off_session: bool = True,
            authenticated: bool = False) -> StripeError | None:
    """Try to collect an open invoice now. Returns the error of a failed attempt (recorded)."""
    if inv["status"] == "draft":
        inv = finalize(ctx, inv)
    if inv["status"] == "paid":
        return None
    if inv["amount_remaining"] == 0:
        _mark_paid(ctx, inv, None, None)
        return None
    pm_id = pm_id or default_payment_method(ctx, inv)
    payment = _open_payment(ctx, inv)
    pi = load(ctx, payment["payment"]["payment_intent"], "payment_intent")
    if not pm_id:
        error = InvalidRequest(
            "This customer has no attached payment source or default payment method. Please consider adding "
            "a default payment method.")
        _record_failure(ctx, inv)
        return error
    pm = ctx.db.get(pm_id)
    if pm is None:
        raise InvalidRequest(f"No such PaymentMethod: '{pm_id}'", code="resource_missing", param="payment_method")
    pi["payment_method"] = pm["id"]
    pi["status"] = "requires_confirmation"
    ctx.db.save(pi)
    error = payment_intents.attempt(ctx, pi, off_session=off_session, authenticated=authenticated)
    on_intent_settled(ctx, payment, ctx.db.get(pi["id"]) or pi)
    return error


def _open_payment(ctx: Ctx, inv: dict[str, Any]) -> dict[str, Any]:
    for payment in ctx.db.find("invoice_payment", parent=inv["id"]):
        if payment["status"] == "open":
            return payment
    # Remaining amount without an open payment (e.g. after a partial one): make a new one.
    pi = payment_intents.create(ctx, amount=inv["amount_remaining"], currency=inv["currency"],
                                customer=inv["customer"], payment_method=None, description=_describe(inv))
    payment = build_invoice_payment(ctx.now, invoice_obj=inv, payment_intent_id=pi["id"],
                                    amount=inv["amount_remaining"])
    payment["is_default"] = False
    ctx.db.save(payment)
    _refresh_payments(ctx, inv)
    return payment


def _refresh_payments(ctx: Ctx, inv: dict[str, Any]) -> None:
    payments = list(reversed(ctx.db.find("invoice_payment", parent=inv["id"])))
    inv["payments"] = empty_list(f"/v1/invoice_payments?invoice={inv['id']}", payments)
    ctx.db.save(inv)


def on_intent_settled(ctx: Ctx, payment: dict[str, Any], pi: dict[str, Any]) -> None:
    """Reflect the outcome of an invoice's PaymentIntent on the invoice and its subscription."""
    inv = load(ctx, payment["invoice"], "invoice")
    if inv["status"] not in ("open", "uncollectible"):
        return
    if pi["status"] == "succeeded":
        _mark_paid(ctx, inv, payment, pi)
    elif pi["status"] == "requires_action":
        old = copy.deepcopy(inv)
        inv["attempted"] = True
        inv["attempt_count"] += 1
        ctx.db.save(inv)
        emit(ctx, "invoice.payment_action_required", inv, changes(old, inv))
        _notify_subscription(ctx, inv, paid=False)
    elif pi["status"] == "requires_payment_method":
        _record_failure(ctx, inv)


def _record_failure(ctx: Ctx, inv: dict[str, Any]) -> None:
    old = copy.deepcopy(inv)
    inv["attempted"] = True
    inv["attempt_count"] += 1
    inv["next_payment_attempt"] = None  # the kernel, not the sandbox, decides on retries
    ctx.db.save(inv)
    emit(ctx, "invoice.payment_failed", inv, changes(old, inv))
    _notify_subscription(ctx, inv, paid=False)


def _mark_paid(ctx: Ctx, inv: dict[str, Any], payment: dict[str, Any] | None, pi: dict[str, Any] | None,
               out_of_band: bool = False) -> None:
    old = copy.deepcopy(inv)
    if payment is not None and pi is not None:
        payment["status"] = "paid"
        payment["amount_paid"] = pi["amount_received"]
        payment["status_transitions"]["paid_at"] = ctx.now
        ctx.db.save(payment)
        emit(ctx, "invoice_payment.paid", payment)
        _refresh_payments(ctx, inv)
        inv = ctx.db.get(inv["id"]) or inv
    paid_now = pi["amount_received"] if pi else inv["amount_remaining"] if out_of_band else 0
    inv["amount_paid"] += paid_now
    inv["amount_remaining"] = max(inv["amount_due"] - inv["amount_paid"], 0)
    inv["attempted"] = True
    if pi is not None:
        inv["attempt_count"] += 1
    inv["status"] = "paid"
    inv["status_transitions"]["paid_at"] = ctx.now
    ctx.db.save(inv)
    emit(ctx, "invoice.paid", inv, changes(old, inv))
    emit(ctx, "invoice.payment_succeeded", inv, changes(old, inv))
    _notify_subscription(ctx, inv, paid=True)


def _notify_subscription(ctx: Ctx, inv: dict[str, Any], *, paid: bool) -> None:
    from . import subscriptions

    sub_id = subscription_id(inv)
    if sub_id:
        sub = ctx.db.get(sub_id)
        if sub:
            subscriptions.on_invoice_outcome(ctx, sub, inv, paid=paid)


def void(ctx: Ctx, inv: dict[str, Any]) -> dict[str, Any]:
    if inv["status"] not in ("open", "uncollectible"):
        raise InvalidRequest(f"You can only pass in open or uncollectible invoices. This invoice is {inv['status']}.",
                             code="invoice_not_editable" if inv["status"] == "draft" else None, param=None)
    old = copy.deepcopy(inv)
    for payment in ctx.db.find("invoice_payment", parent=inv["id"]):
        if payment["status"] == "open":
            payment["status"] = "canceled"
            payment["status_transitions"]["canceled_at"] = ctx.now
            ctx.db.save(payment)
            pi = ctx.db.get(payment["payment"]["payment_intent"])
            if pi and pi["status"] in payment_intents.CANCELABLE:
                old_pi = copy.deepcopy(pi)
                pi.update(status="canceled", canceled_at=ctx.now, cancellation_reason="void_invoice",
                          next_action=None)
                ctx.db.save(pi)
                emit(ctx, "payment_intent.canceled", pi, changes(old_pi, pi))
    _refresh_payments(ctx, inv)
    inv = ctx.db.get(inv["id"]) or inv
    inv["status"] = "void"
    inv["amount_remaining"] = 0
    inv["status_transitions"]["voided_at"] = ctx.now
    ctx.db.save(inv)
    emit(ctx, "invoice.voided", inv, changes(old, inv))
    return inv


# -- preview -----------------------------------------------------------------------------------
def _preview(ctx: Ctx, params: Params) -> dict[str, Any]:
    from . import customers, subscriptions

    customer = load_param(ctx, params, "customer", "customer")
    sub = load_param(ctx, params, "subscription", "subscription")
    if sub is None and customer is None:
        raise InvalidRequest("Missing required param: customer or subscription.", code="parameter_missing",
                             param="customer")
    if sub is not None and customer is not None and sub["customer"] != customer["id"]:
        raise InvalidRequest("The subscription does not belong to that customer.", param="subscription")
    if customer is None:
        customer = customers.load_live(ctx, sub["customer"])
    details = params.dict("subscription_details") or Params({}, "subscription_details")
    details.reject_unknown(["items", "proration_date", "proration_behavior", "cancel_at_period_end", "cancel_at",
                            "trial_end", "billing_cycle_anchor"],
                           unsupported=["cancel_now", "default_tax_rates", "resume_at", "start_date", "billing_mode"])
    if sub is None:
        # Preview of a new subscription's first invoice.
        return subscriptions.preview_new(ctx, customer, details)
    behaviour = details.enum("proration_behavior", ["create_prorations", "always_invoice", "none"],
                             default="create_prorations")
    planned = subscriptions.plan_change(ctx, sub, details, preview=True)
    lines = [line_from_pending(ctx, ii) for ii in pending_items(ctx, sub["id"])]
    proration = planned.proration_lines if behaviour != "none" else []
    if behaviour == "always_invoice":
        lines += proration
        inv = assemble(ctx, customer=customer, sub=sub, billing_reason="subscription_update", lines=lines,
                       period_start=planned.at, period_end=planned.at, currency=sub["currency"], preview=True)
        return inv
    # Stripe's preview without immediate invoicing shows the next renewal invoice.
    start, end = planned.next_period
    lines += proration
    next_items = _items_after(ctx, sub, planned.items, start)
    if not planned.ends_at_period_end and next_items:
        lines += [period_line(ctx, sub, item, start, end) for item in next_items]
    inv = assemble(ctx, customer=customer, sub=sub, billing_reason="upcoming", lines=lines,
                   period_start=planned.period[0], period_end=planned.period[1], currency=sub["currency"],
                   preview=True)
    inv["created"] = start
    return inv


def _items_after(ctx: Ctx, sub: dict[str, Any], items: list[dict[str, Any]], boundary: int) -> list[dict[str, Any]]:
    """The items the next period will bill: a schedule phase starting then replaces them."""
    from . import subscription_schedules

    schedule = subscription_schedules.schedule_of(ctx, sub)
    if schedule is None or not schedule["current_phase"] or schedule["current_phase"]["end_date"] != boundary:
        return items
    phase = subscription_schedules.next_phase(ctx, schedule)
    if phase is None:
        return [] if schedule["end_behavior"] == "cancel" else items
    return [{"id": items[i]["id"] if i < len(items) else None, "price": load(ctx, item["price"], "price"),
             "quantity": item["quantity"]} for i, item in enumerate(phase["items"])]


@route("POST", "/invoices/create_preview")
def create_preview(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["customer", "subscription", "subscription_details", "currency"],
                          unsupported=["customer_details", "invoice_items", "issuer", "on_behalf_of", "preview_mode",
                                       "schedule", "schedule_details", "customer_account", "automatic_tax",
                                       "discounts"])
    return _preview(ctx, params)


# -- one-off invoices ------------------------------------------------------------------------------
def _recompute(ctx: Ctx, inv: dict[str, Any]) -> None:
    """Totals of a draft after its lines changed."""
    total = sum(line["amount"] for line in inv["lines"]["data"])
    inv.update(subtotal=total, subtotal_excluding_tax=total, total=total, total_excluding_tax=total,
               amount_due=max(total, 0), amount_remaining=max(total, 0))


@route("POST", "/invoiceitems")
def create_invoice_item(ctx: Ctx, params: Params) -> dict[str, Any]:
    from . import customers

    params.reject_unknown(["customer", "amount", "currency", "description", "metadata", "price", "pricing",
                           "quantity", "subscription", "invoice", "period"],
                          unsupported=["discountable", "unit_amount_decimal", "price_data", "tax_rates",
                                       "tax_behavior", "tax_code", "customer_account", "discounts"])
    customer = customers.load_live(ctx, params.str("customer", required=True) or "")
    pricing = params.dict("pricing")
    price_id = params.str("price") or (pricing.str("price") if pricing else None)
    price = None
    quantity = params.int("quantity", default=1, minimum=0) or 0
    if price_id:
        price = load_param(ctx, Params({"price": price_id}), "price", "price")
        assert price is not None
        amount, currency = price["unit_amount"] * quantity, price["currency"]
    else:
        amount = params.int("amount", required=True) or 0
        currency = (params.str("currency", required=True) or "").lower()
    sub = load_param(ctx, params, "subscription", "subscription")
    period = params.dict("period")
    start = period.int("start", required=True) if period else ctx.now
    end = period.int("end", required=True) if period else ctx.now
    ii = one_off_item(ctx.now, customer=customer["id"], amount=amount, currency=currency,
                      description=params.str("description") or (product_name(ctx, price) if price else None),
                      quantity=quantity, price=price, subscription_id=sub["id"] if sub else None,
                      period_start=start or ctx.now, period_end=end or ctx.now, metadata=params.metadata() or {})
    target = load_param(ctx, params, "invoice", "invoice")
    ctx.db.save(ii)
    emit(ctx, "invoiceitem.created", ii)
    if target is not None:
        _add_to_draft(ctx, target, ii)
    return load(ctx, ii["id"], "invoiceitem")


def _add_to_draft(ctx: Ctx, inv: dict[str, Any], ii: dict[str, Any]) -> None:
    if inv["status"] != "draft":
        raise InvalidRequest(f"You can only add invoice items to draft invoices; {inv['id']} is {inv['status']}.",
                             code="invoice_not_editable", param="invoice")
    if ii["customer"] != inv["customer"] or ii["currency"] != inv["currency"]:
        raise InvalidRequest("The invoice item and the invoice must have the same customer and currency.",
                             param="invoice")
    old = copy.deepcopy(inv)
    ii["invoice"] = inv["id"]
    ctx.db.save(ii)
    inv["lines"]["data"].append(manual_line(ii, inv["id"]))
    _recompute(ctx, inv)
    ctx.db.save(inv)
    emit(ctx, "invoice.updated", inv, changes(old, inv))


@route("DELETE", "/invoiceitems/<item_id>", params=())
def delete_invoice_item(ctx: Ctx, params: Params, item_id: str) -> dict[str, Any]:
    ii = load(ctx, item_id, "invoiceitem")
    if ii["invoice"]:
        inv = load(ctx, ii["invoice"], "invoice")
        if inv["status"] != "draft":
            raise InvalidRequest("You cannot delete an invoice item that is on a finalized invoice.",
                                 code="invoice_not_editable")
        inv["lines"]["data"] = [line for line in inv["lines"]["data"]
                                if (line["parent"].get("invoice_item_details") or {}).get("invoice_item") != item_id
                                and (line["parent"].get("subscription_item_details") or {}).get("invoice_item")
                                != item_id]
        _recompute(ctx, inv)
        ctx.db.save(inv)
    ctx.db.delete(item_id)
    emit(ctx, "invoiceitem.deleted", ii)
    return {"id": item_id, "object": "invoiceitem", "deleted": True}


@route("POST", "/invoices")
def create_invoice(ctx: Ctx, params: Params) -> dict[str, Any]:
    """A one-off (``manual``) draft invoice; add lines with POST /v1/invoiceitems?invoice=…"""
    from . import customers

    params.reject_unknown(["customer", "auto_advance", "collection_method", "description", "metadata", "currency",
                           "default_payment_method", "pending_invoice_items_behavior", "footer", "subscription"],
                          unsupported=["days_until_due", "statement_descriptor", "payment_settings", "rendering",
                                       "customer_account", "automatic_tax", "due_date"])
    customer = customers.load_live(ctx, params.str("customer", required=True) or "")
    if params.str("collection_method", default="charge_automatically") != "charge_automatically":
        raise InvalidRequest("The sandbox only supports collection_method=charge_automatically.",
                             param="collection_method")
    include = params.enum("pending_invoice_items_behavior", ["include", "exclude"], default="exclude")
    pending = [ii for ii in ctx.db.find("invoiceitem", customer=customer["id"])
               if ii["invoice"] is None and not ii["proration"]] if include == "include" else []
    currency = (params.str("currency") or (pending[0]["currency"] if pending else "") or
                customer.get("currency") or "usd").lower()
    inv = assemble(ctx, customer=customer, sub=None, billing_reason="manual", lines=[], period_start=ctx.now,
                   period_end=ctx.now, currency=currency)
    inv["metadata"] = params.metadata() or {}
    inv["description"] = params.str("description") or None
    inv["auto_advance"] = bool(params.bool("auto_advance", False))
    pm_id = params.str("default_payment_method")
    if pm_id:
        inv["default_payment_method"] = payment_methods.resolve(ctx, pm_id, "default_payment_method",
                                                                attach_to=customer["id"])["id"]
    for ii in pending:
        if ii["currency"] == currency:
            ii["invoice"] = inv["id"]
            ctx.db.save(ii)
            inv["lines"]["data"].append(manual_line(ii, inv["id"]))
    _recompute(ctx, inv)
    ctx.db.save(inv)
    emit(ctx, "invoice.created", inv)
    return inv


@route("DELETE", "/invoices/<invoice_id>", params=())
def delete_invoice(ctx: Ctx, params: Params, invoice_id: str) -> dict[str, Any]:
    inv = load(ctx, invoice_id, "invoice")
    if inv["status"] != "draft":
        raise InvalidRequest("You can only delete draft invoices; void finalized ones instead.",
                             code="invoice_not_editable")
    for ii in ctx.db.find("invoiceitem", ref=invoice_id):
        ii["invoice"] = None
        ctx.db.save(ii)
    ctx.db.delete(invoice_id)
    emit(ctx, "invoice.deleted", inv)
    return {"id": invoice_id, "object": "invoice", "deleted": True}


# -- endpoints ---------------------------------------------------------------------------------
@route("GET", "/invoices/<invoice_id>", params=())
def retrieve_invoice(ctx: Ctx, params: Params, invoice_id: str) -> dict[str, Any]:
    return load(ctx, invoice_id, "invoice")


@route("GET", "/invoices/<invoice_id>/lines", params=LIST_PARAMS)
def list_invoice_lines(ctx: Ctx, params: Params, invoice_id: str) -> dict[str, Any]:
    inv = load(ctx, invoice_id, "invoice")
    return list_of(f"/v1/invoices/{invoice_id}/lines", inv["lines"]["data"], params)


@route("POST", "/invoices/<invoice_id>")
def update_invoice(ctx: Ctx, params: Params, invoice_id: str) -> dict[str, Any]:
    params.reject_unknown(["metadata", "description", "footer", "default_payment_method", "auto_advance"])
    inv = load(ctx, invoice_id, "invoice")
    old = copy.deepcopy(inv)
    metadata = params.metadata(inv["metadata"])
    if metadata is not None:
        inv["metadata"] = metadata
    for key in ("description", "footer"):
        given, value = params.nullable_str(key)
        if given:
            inv[key] = value
    given, pm_id = params.nullable_str("default_payment_method")
    if given:
        if pm_id:
            pm_id = payment_methods.resolve(ctx, pm_id, "default_payment_method", attach_to=inv["customer"])["id"]
        inv["default_payment_method"] = pm_id
    if "auto_advance" in params:
        inv["auto_advance"] = params.bool("auto_advance")
    ctx.db.save(inv)
    if old != inv:
        emit(ctx, "invoice.updated", inv, changes(old, inv))
    return inv


@route("POST", "/invoices/<invoice_id>/finalize")
def finalize_invoice(ctx: Ctx, params: Params, invoice_id: str) -> dict[str, Any]:
    params.reject_unknown(["auto_advance"])
    return finalize(ctx, load(ctx, invoice_id, "invoice"))


@route("POST", "/invoices/<invoice_id>/pay")
def pay_invoice(ctx: Ctx, params: Params, invoice_id: str) -> dict[str, Any]:
    params.reject_unknown(["payment_method", "off_session", "paid_out_of_band"],
                          unsupported=["forgive", "mandate", "source"])
    inv = load(ctx, invoice_id, "invoice")
    if inv["status"] == "paid":
        raise InvalidRequest("Invoice is already paid", code="invoice_already_paid")
    if inv["status"] == "void":
        raise InvalidRequest("This invoice can no longer be paid because it has been voided.",
                             code="invoice_not_editable")
    if params.bool("paid_out_of_band", False):
        if inv["status"] == "draft":
            inv = finalize(ctx, inv)
        if inv["status"] != "paid":
            _mark_paid(ctx, inv, None, None, out_of_band=True)
        return load(ctx, invoice_id, "invoice")
    pm_id = params.str("payment_method")
    if pm_id:
        pm_id = payment_methods.resolve(ctx, pm_id, "payment_method", attach_to=inv["customer"])["id"]
    error = collect(ctx, inv, pm_id=pm_id, off_session=params.bool("off_session", True) is not False)
    if error is not None:
        if isinstance(error, CardError):
            error.keep_changes = True
            error.extra.pop("payment_intent", None)
            raise error
        error.keep_changes = True
        raise error
    return load(ctx, invoice_id, "invoice")


@route("POST", "/invoices/<invoice_id>/void")
def void_invoice(ctx: Ctx, params: Params, invoice_id: str) -> dict[str, Any]:
    params.reject_unknown([])
    return void(ctx, load(ctx, invoice_id, "invoice"))


@route("POST", "/invoices/<invoice_id>/mark_uncollectible")
def mark_uncollectible(ctx: Ctx, params: Params, invoice_id: str) -> dict[str, Any]:
    params.reject_unknown([])
    inv = load(ctx, invoice_id, "invoice")
    if inv["status"] != "open":
        raise InvalidRequest(f"You can only mark open invoices as uncollectible. This invoice is {inv['status']}.")
    old = copy.deepcopy(inv)
    inv["status"] = "uncollectible"
    inv["status_transitions"]["marked_uncollectible_at"] = ctx.now
    ctx.db.save(inv)
    emit(ctx, "invoice.marked_uncollectible", inv, changes(old, inv))
    return inv


@route("GET", "/invoices")
def list_invoices(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["customer", "subscription", "status", "created", "collection_method", "limit",
                           "starting_after", "ending_before"],
                          unsupported=["customer_account", "due_date"])
    status = params.enum("status", STATUSES)
    return paginate(ctx, params, "/v1/invoices", "invoice", customer=params.str("customer"),
                    subscription=params.str("subscription"), status=status)


@route("GET", "/invoice_payments/<payment_id>", params=())
def retrieve_invoice_payment(ctx: Ctx, params: Params, payment_id: str) -> dict[str, Any]:
    return load(ctx, payment_id, "invoice_payment")


@route("GET", "/invoice_payments")
def list_invoice_payments(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["invoice", "payment", "status", "limit", "starting_after", "ending_before", "created"])
    payment = params.dict("payment")
    pi_id = payment.str("payment_intent") if payment else None
    return paginate(ctx, params, "/v1/invoice_payments", "invoice_payment", parent=params.str("invoice"),
                    ref=pi_id, status=params.str("status"))


@route("GET", "/invoiceitems/<item_id>", params=())
def retrieve_invoice_item(ctx: Ctx, params: Params, item_id: str) -> dict[str, Any]:
    return load(ctx, item_id, "invoiceitem")


@route("GET", "/invoiceitems")
def list_invoice_items(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["customer", "invoice", "pending", "created", "limit", "starting_after",
                           "ending_before"])
    result = paginate(ctx, params, "/v1/invoiceitems", "invoiceitem", customer=params.str("customer"),
                      ref=params.str("invoice"))
    pending = params.bool("pending")
    if pending is not None:
        result["data"] = [ii for ii in result["data"] if (ii["invoice"] is None) == pending]
    return result

"""Subscriptions and subscription items: creation, changes with proration, cancellation,
and what happens when sandbox time reaches a period end, a trial end or a cancellation.

Periods: see ``clock.py`` (calendar months from the billing-cycle anchor).
Renewal invoices are finalized and charged at once (Stripe waits about an hour).
A past_due subscription keeps renewing and invoicing; unpaid, canceled and
incomplete_expired ones do not.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ..clock import DAY, period_end_after
from ..context import Ctx
from ..errors import CardError, InvalidRequest, StripeError
from ..events import emit, emit_update
from ..ids import new_id
from ..objects.subscriptions import subscription as build_subscription, subscription_item as build_item
from ..params import Params
from ..proration import proration_pair
from . import customers, invoices, payment_methods
from .common import list_of, load, load_param, paginate, route

STATUSES = ("incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled", "unpaid", "paused")
ENDED = ("canceled", "incomplete_expired")
RENEWING = ("active", "past_due", "trialing")
PRORATION_BEHAVIOURS = ("create_prorations", "always_invoice", "none")
PAYMENT_BEHAVIOURS = ("allow_incomplete", "error_if_incomplete", "default_incomplete")
INCOMPLETE_EXPIRY = 23 * 3600
TRIAL_WARNING = 3 * DAY


# -- storage -------------------------------------------------------------------------------------
def items_of(sub: dict[str, Any]) -> list[dict[str, Any]]:
    return sub["items"]["data"]


def current_period(sub: dict[str, Any]) -> tuple[int, int]:
    item = items_of(sub)[0]
    return item["current_period_start"], item["current_period_end"]


def interval_of(sub: dict[str, Any]) -> tuple[str, int]:
    recurring = items_of(sub)[0]["price"]["recurring"]
    return recurring["interval"], recurring["interval_count"]


def next_boundary(sub: dict[str, Any], after: int) -> int:
    interval, count = interval_of(sub)
    return period_end_after(sub["billing_cycle_anchor"], after, interval, count)


def due_time(ctx: Ctx, sub: dict[str, Any]) -> int | None:
    """When the clock next has something to do for this subscription."""
    from . import subscription_schedules

    status = sub["status"]
    if status == "incomplete":
        return sub["created"] + INCOMPLETE_EXPIRY
    if status not in RENEWING:
        return None
    moments = []
    if status == "trialing" and sub["trial_end"]:
        extra = ctx.db.extra(sub["id"])
        warning = sub["trial_end"] - TRIAL_WARNING
        if not extra.get("trial_will_end_sent") and warning > sub["created"]:
            moments.append(warning)
        moments.append(sub["trial_end"])
    else:
        moments.append(current_period(sub)[1])
    if sub["cancel_at"]:
        moments.append(sub["cancel_at"])
    boundary = subscription_schedules.next_boundary_for(ctx, sub)
    if boundary is not None:
        moments.append(boundary)
    return min(moments)


def store(ctx: Ctx, sub: dict[str, Any], extra: Any = None) -> dict[str, Any]:
    """Save the subscription and its items; keep the clock's due time current."""
    if extra is None:
        ctx.db.save(sub)
    else:
        ctx.db.save(sub, extra=extra)
    for item in items_of(sub):
        ctx.db.save(item)
    ctx.db.set_due(sub["id"], due_time(ctx, sub))
    return sub


def reload(ctx: Ctx, sub_id: str) -> dict[str, Any]:
    return load(ctx, sub_id, "subscription")


# -- prices and items ----------------------------------------------------------------------------
def recurring_price(ctx: Ctx, price_id: str | None, param: str, currency: str | None = None,
                    interval: tuple[str, int] | None = None) -> dict[str, Any]:
    if not price_id:
        raise InvalidRequest(f"Missing required param: {param}.", code="parameter_missing", param=param)
    price = ctx.db.get(price_id)
    if price is None or price.get("object") != "price":
        raise InvalidRequest(f"No such price: '{price_id}'", code="resource_missing", param=param)
    if not price["recurring"]:
        raise InvalidRequest(f"The price specified ({price_id}) is set to `type=one_time` but this field only "
                             "accepts prices with `type=recurring`.", param=param)
    if not price["active"]:
        raise InvalidRequest(f"The price specified ({price_id}) is inactive. This field only accepts active "
                             "prices.", param=param)
    if currency and price["currency"] != currency:
        raise InvalidRequest(f"The price specified ({price_id}) has currency {price['currency']}, but this "
                             f"subscription is billed in {currency}.", param=param)
    if interval and (price["recurring"]["interval"], price["recurring"]["interval_count"]) != interval:
        raise InvalidRequest("The sandbox only supports changing to a price with the same billing interval "
                             f"({interval[1]} {interval[0]}).", param=param)
    return price


def amount_of(price: dict[str, Any], quantity: int) -> int:
    return price["unit_amount"] * quantity


@dataclass
class ItemEntry:
    """One requested change to the item list (from ``items[n]`` or a schedule phase)."""

    item_id: str | None
    price: dict[str, Any] | None
    quantity: int | None
    deleted: bool = False
    metadata: dict[str, str] | None = None
    param: str = "items"


@dataclass
class PlannedChange:
    items: list[dict[str, Any]]
    proration_lines: list[dict[str, Any]]
    at: int
    period: tuple[int, int]
    next_period: tuple[int, int]
    ends_at_period_end: bool
    changed: bool = False
    removed: list[str] = field(default_factory=list)


def parse_item_entries(ctx: Ctx, sub: dict[str, Any], params: Params) -> list[ItemEntry]:
    entries = []
    currency, interval = sub["currency"], interval_of(sub)
    for entry in params.list_of_dicts("items"):
        entry.reject_unknown(["id", "price", "quantity", "deleted", "metadata", "plan"],
                             unsupported=["clear_usage", "price_data", "discounts", "tax_rates", "billing_thresholds"])
        price_id = entry.str("price") or entry.str("plan")
        price = recurring_price(ctx, price_id, entry.name("price"), currency, interval) if price_id else None
        entries.append(ItemEntry(item_id=entry.str("id"), price=price,
                                 quantity=entry.int("quantity", minimum=0),
                                 deleted=bool(entry.bool("deleted", False)),
                                 metadata=entry.metadata(), param=entry.prefix))
    return entries


def compute_change(ctx: Ctx, sub: dict[str, Any], entries: list[ItemEntry], at: int,
                   preview: bool = False) -> PlannedChange:
    """New item list and proration lines for ``entries`` applied at ``at``; writes nothing."""
    start, end = current_period(sub)
    items = copy.deepcopy(items_of(sub))
    by_id = {item["id"]: item for item in items}
    lines: list[dict[str, Any]] = []
    prorate = sub["status"] != "trialing" and end > at
    removed: list[str] = []
    changed = False

    def prorations(item_id: str, old: tuple[dict[str, Any], int] | None, new: tuple[dict[str, Any], int] | None) -> None:
        if not prorate:
            return
        old_amount = amount_of(*old) if old else 0
        new_amount = amount_of(*new) if new else 0
        credit, charge = proration_pair(old_amount, new_amount, start, end, at)
        tmp = (lambda: new_id("il_tmp")) if preview else (lambda: None)
        if old:
            lines.append(invoices.proration_line(ctx, sub, item_id, old[0], old[1], credit, at, end,
                                                 credit=True, line_id=tmp()))
        if new:
            lines.append(invoices.proration_line(ctx, sub, item_id, new[0], new[1], charge, at, end,
                                                 credit=False, line_id=tmp()))

    for entry in entries:
        if entry.item_id:
            item = by_id.get(entry.item_id)
            if item is None:
                raise InvalidRequest(f"No such subscription item: '{entry.item_id}'", code="resource_missing",
                                     param=f"{entry.param}[id]")
            old = (item["price"], item["quantity"])
            if entry.deleted:
                items.remove(item)
                removed.append(item["id"])
                prorations(item["id"], old, None)
                changed = True
                continue
            new_price = entry.price or item["price"]
            new_quantity = item["quantity"] if entry.quantity is None else entry.quantity
            if entry.metadata is not None:
                item["metadata"] = entry.metadata
            if (new_price["id"], new_quantity) != (item["price"]["id"], item["quantity"]):
                prorations(item["id"], old, (new_price, new_quantity))
                item["price"] = new_price
                item["plan"] = _plan(new_price)
                item["quantity"] = new_quantity
                changed = True
        else:
            if entry.price is None:
                raise InvalidRequest(f"Missing required param: {entry.param}[price].", code="parameter_missing",
                                     param=f"{entry.param}[price]")
            if any(item["price"]["id"] == entry.price["id"] for item in items):
                raise InvalidRequest("Cannot add multiple subscription items with the same plan: "
                                     f"{entry.price['id']}", param=f"{entry.param}[price]")
            quantity = 1 if entry.quantity is None else entry.quantity
            item = build_item(ctx.now, subscription_id=sub["id"], price=entry.price, quantity=quantity,
                              period_start=start, period_end=end, metadata=entry.metadata)
            items.append(item)
            prorations(item["id"], None, (entry.price, quantity))
            changed = True
    if not items:
        raise InvalidRequest("A subscription must have at least one active plan. To cancel a subscription, "
                             "please use the cancel API endpoint.", param="items")
    next_end = next_boundary(sub, end)
    return PlannedChange(items=items, proration_lines=lines, at=at, period=(start, end),
                         next_period=(end, next_end),
                         ends_at_period_end=bool(sub["cancel_at_period_end"]), changed=changed,
                         removed=removed)


def _plan(price: dict[str, Any]) -> dict[str, Any]:
    from ..objects.catalog import plan_from_price

    return plan_from_price(price)


def proration_moment(ctx: Ctx, sub: dict[str, Any], params: Params) -> int:
    start, end = current_period(sub)
    if "proration_date" in params:
        at = params.int("proration_date", minimum=0)
        assert at is not None
        if not start <= at <= end:
            raise InvalidRequest(
                f"The proration_date ({at}) must lie within the subscription's current period ({start} to {end}).",
                param="proration_date")
        return at
    return min(max(ctx.now, start), end)


def plan_change(ctx: Ctx, sub: dict[str, Any], params: Params, preview: bool = False) -> PlannedChange:
    """Used by update and by the invoice preview, so both see exactly the same lines."""
    entries = parse_item_entries(ctx, sub, params)
    planned = compute_change(ctx, sub, entries, proration_moment(ctx, sub, params), preview=preview)
    if preview and "cancel_at_period_end" in params:
        planned.ends_at_period_end = bool(params.bool("cancel_at_period_end"))
    return planned


# -- applying changes -----------------------------------------------------------------------------
def apply_change(ctx: Ctx, sub: dict[str, Any], planned: PlannedChange, *, proration_behavior: str,
                 payment_behavior: str, old: dict[str, Any] | None = None, off_session: bool = False) -> dict[str, Any]:
    """Commit a planned item change: items, prorations (pending or invoiced now), events."""
    old = old or copy.deepcopy(sub)
    sub["items"]["data"] = planned.items
    for item_id in planned.removed:
        ctx.db.delete(item_id)
    lines = planned.proration_lines if proration_behavior != "none" else []
    if lines and proration_behavior == "create_prorations":
        from ..objects.invoices import invoice_item

        for line in lines:
            ii = invoice_item(ctx.now, customer=sub["customer"], line=line)
            ctx.db.save(ii)
            emit(ctx, "invoiceitem.created", ii)
    inv = None
    if lines and proration_behavior == "always_invoice":
        store(ctx, sub)  # the invoice reads the new items
        inv = invoices.create(ctx, customer=customers.load_live(ctx, sub["customer"]), sub=sub,
                              billing_reason="subscription_update", lines=lines, period_start=planned.at,
                              period_end=planned.at, currency=sub["currency"])
        sub["latest_invoice"] = inv["id"]
    store(ctx, sub)
    emit_update(ctx, "customer.subscription.updated", old, sub)
    if inv is not None:
        _collect_change(ctx, inv, payment_behavior, off_session)
    return reload(ctx, sub["id"])


def _collect_change(ctx: Ctx, inv: dict[str, Any], payment_behavior: str, off_session: bool) -> None:
    """Finalize and charge a proration invoice; with error_if_incomplete a failure undoes everything."""
    inv = invoices.finalize(ctx, inv)
    if inv["status"] != "open" or payment_behavior == "default_incomplete":
        return
    error = invoices.collect(ctx, inv, off_session=off_session)
    if error is not None and payment_behavior == "error_if_incomplete":
        # Stripe applies nothing in this case: the whole request is rolled back.
        _raise_rolled_back(error)
    if payment_behavior == "error_if_incomplete" and _invoice_intent_status(ctx, inv["id"]) == "requires_action":
        raise CardError("This payment requires authentication; the update was not applied.",
                        code="authentication_required", decline_code="authentication_required")


def _raise_rolled_back(error: StripeError) -> None:
    error.keep_changes = False
    error.extra.pop("payment_intent", None)
    raise error


def _invoice_intent_status(ctx: Ctx, invoice_id: str) -> str | None:
    for payment in ctx.db.find("invoice_payment", parent=invoice_id):
        pi = ctx.db.get(payment["payment"]["payment_intent"])
        if pi:
            return pi["status"]
    return None


def on_invoice_outcome(ctx: Ctx, sub: dict[str, Any], inv: dict[str, Any], *, paid: bool) -> None:
    """Subscription status follows its invoices: paid → active, failed renewal → past_due."""
    old = copy.deepcopy(sub)
    if paid:
        if sub["status"] in ("incomplete", "past_due", "unpaid"):
            still_open = [i for i in ctx.db.find("invoice", subscription=sub["id"])
                          if i["status"] == "open" and i["id"] != inv["id"]]
            if not still_open:
                sub["status"] = "active"
    elif inv["billing_reason"] != "subscription_create" and sub["status"] in ("active", "trialing"):
        sub["status"] = "past_due"
    if sub != old:
        store(ctx, sub)
        emit_update(ctx, "customer.subscription.updated", old, sub)


def cancel_now(ctx: Ctx, sub: dict[str, Any], *, reason: str, at: int | None = None,
               prorate: bool = False, invoice_now: bool = False) -> dict[str, Any]:
    from . import subscription_schedules

    at = ctx.now if at is None else at
    if prorate and sub["status"] in ("active", "past_due") and current_period(sub)[1] > at:
        from ..objects.invoices import invoice_item

        for line in _credit_lines(ctx, sub, at):
            ii = invoice_item(ctx.now, customer=sub["customer"], line=line)
            ctx.db.save(ii)
            emit(ctx, "invoiceitem.created", ii)
    if invoice_now:
        pending = invoices.pending_items(ctx, sub["id"])
        if pending:
            customer = customers.load_live(ctx, sub["customer"])
            inv = invoices.create(ctx, customer=customer, sub=sub, billing_reason="subscription_update",
                                  lines=[], period_start=at, period_end=at, currency=sub["currency"])
            inv = invoices.finalize(ctx, inv)
            if inv["status"] == "open":
                invoices.collect(ctx, inv, off_session=True)
            sub = reload(ctx, sub["id"])
            sub["latest_invoice"] = inv["id"]
    sub["status"] = "canceled"
    sub["canceled_at"] = sub["canceled_at"] or at
    sub["ended_at"] = at
    sub["cancel_at"] = sub["cancel_at"] if sub["cancel_at"] and sub["cancel_at"] <= at else None
    sub["cancellation_details"]["reason"] = sub["cancellation_details"]["reason"] or reason
    store(ctx, sub)
    if sub.get("schedule"):
        subscription_schedules.on_subscription_canceled(ctx, sub)
        sub = reload(ctx, sub["id"])
    emit(ctx, "customer.subscription.deleted", sub)
    return sub


def _credit_lines(ctx: Ctx, sub: dict[str, Any], at: int) -> list[dict[str, Any]]:
    start, end = current_period(sub)
    lines = []
    for item in items_of(sub):
        credit, _ = proration_pair(amount_of(item["price"], item["quantity"]), 0, start, end, at)
        lines.append(invoices.proration_line(ctx, sub, item["id"], item["price"], item["quantity"], credit, at,
                                             end, credit=True))
    return lines


# -- the clock ---------------------------------------------------------------------------------------
def process_due(ctx: Ctx, sub: dict[str, Any]) -> None:
    """Do what falls due at ``ctx.now`` for this subscription (called by the test clock)."""
    from . import subscription_schedules

    now = ctx.now
    if sub["status"] == "incomplete":
        if now >= sub["created"] + INCOMPLETE_EXPIRY:
            _expire_incomplete(ctx, sub)
        return
    if sub["status"] not in RENEWING:
        ctx.db.set_due(sub["id"], None)
        return
    if subscription_schedules.boundary_reached(ctx, sub, now):
        subscription_schedules.advance(ctx, sub, now)
        sub = reload(ctx, sub["id"])
        if sub["status"] not in RENEWING:
            return
    if sub["cancel_at"] and sub["cancel_at"] <= now:
        # A cancellation due at the period (or trial) end wins over renewing: no new invoice.
        cancel_now(ctx, sub, reason="cancellation_requested", at=sub["cancel_at"])
        return
    if sub["status"] == "trialing":
        extra = ctx.db.extra(sub["id"])
        if not extra.get("trial_will_end_sent") and now >= sub["trial_end"] - TRIAL_WARNING:
            ctx.db.save(sub, extra=dict(extra, trial_will_end_sent=True))
            emit(ctx, "customer.subscription.trial_will_end", sub)
        if now >= sub["trial_end"]:
            _end_trial(ctx, sub)
        else:
            store(ctx, sub)
        return
    if current_period(sub)[1] <= now:
        renew(ctx, sub)
        return
    store(ctx, sub)


def _expire_incomplete(ctx: Ctx, sub: dict[str, Any]) -> None:
    old = copy.deepcopy(sub)
    if sub["latest_invoice"]:
        inv = ctx.db.get(sub["latest_invoice"])
        if inv and inv["status"] == "open":
            invoices.void(ctx, inv)
    sub["status"] = "incomplete_expired"
    sub["ended_at"] = ctx.now
    store(ctx, sub)
    emit_update(ctx, "customer.subscription.updated", old, sub)


def _end_trial(ctx: Ctx, sub: dict[str, Any], finalize_later: bool = True) -> None:
    at = sub["trial_end"]
    old = copy.deepcopy(sub)
    previous_start = current_period(sub)[0]
    end = next_boundary(sub, at)
    for item in items_of(sub):
        item["current_period_start"], item["current_period_end"] = at, end
    sub["status"] = "active"
    _bill_period(ctx, sub, old, at, end, previous_start, at, finalize_later)


def _end_trial_now(ctx: Ctx, sub: dict[str, Any]) -> None:
    sub["trial_end"] = sub["billing_cycle_anchor"] = ctx.now
    store(ctx, sub)
    emit(ctx, "customer.subscription.trial_will_end", sub)
    _end_trial(ctx, reload(ctx, sub["id"]), finalize_later=False)  # asked for now: invoiced and charged now


def renew(ctx: Ctx, sub: dict[str, Any]) -> None:
    old = copy.deepcopy(sub)
    start, end = current_period(sub)
    new_end = next_boundary(sub, end)
    for item in items_of(sub):
        item["current_period_start"], item["current_period_end"] = end, new_end
    _bill_period(ctx, sub, old, end, new_end, start, end)


def _bill_period(ctx: Ctx, sub: dict[str, Any], old: dict[str, Any], start: int, end: int,
                 previous_start: int, previous_end: int, finalize_later: bool = True) -> None:
    """Invoice a new period: lines cover the new period, the invoice the one just ended (as Stripe).

    At a renewal the invoice stays a draft for an hour (``finalize_later``); asked for through the
    API (ending a trial now) it is finalized and charged at once.
    """
    customer = ctx.db.get(sub["customer"])
    store(ctx, sub)
    if customer is None or customer.get("deleted"):
        emit_update(ctx, "customer.subscription.updated", old, sub)
        return
    lines = [invoices.period_line(ctx, sub, item, start, end) for item in items_of(sub)]
    inv = invoices.create(ctx, customer=customer, sub=sub, billing_reason="subscription_cycle", lines=lines,
                          period_start=previous_start, period_end=previous_end, currency=sub["currency"],
                          finalize_later=finalize_later)
    sub["latest_invoice"] = inv["id"]
    store(ctx, sub)
    emit_update(ctx, "customer.subscription.updated", old, sub)
    if not finalize_later:
        inv = invoices.finalize(ctx, inv)
        if inv["status"] == "open":
            invoices.collect(ctx, inv, off_session=True)


# -- creation ---------------------------------------------------------------------------------------
def create_subscription_for(ctx: Ctx, *, customer: dict[str, Any], entries: list[tuple[dict[str, Any], int]],
                            default_payment_method: str | None, metadata: dict[str, str],
                            trial_end: int | None, payment_behavior: str = "allow_incomplete",
                            off_session: bool = False, authenticated: bool = False,
                            cancel_at_period_end: bool = False, cancel_at: int | None = None,
                            description: str | None = None) -> dict[str, Any]:
    """Create a subscription and its first invoice; collect it unless told not to."""
    now = ctx.now
    first_price = entries[0][0]
    currency = first_price["currency"]
    interval = (first_price["recurring"]["interval"], first_price["recurring"]["interval_count"])
    for price, _ in entries[1:]:
        if price["currency"] != currency or \
                (price["recurring"]["interval"], price["recurring"]["interval_count"]) != interval:
            raise InvalidRequest("All prices on a subscription must have the same currency and billing interval.",
                                 param="items")
    sub_id = new_id("sub")
    trialing = trial_end is not None and trial_end > now
    anchor = trial_end if trialing else now
    end = trial_end if trialing else period_end_after(anchor, now, *interval)
    items = [build_item(now, subscription_id=sub_id, price=price, quantity=quantity, period_start=now,
                        period_end=end) for price, quantity in entries]
    sub = build_subscription(now, subscription_id=sub_id, customer=customer["id"], currency=currency, items=items,
                             default_payment_method=default_payment_method, metadata=metadata,
                             status="trialing" if trialing else "incomplete", anchor=anchor,
                             trial_start=now if trialing else None, trial_end=trial_end if trialing else None,
                             description=description)
    if cancel_at_period_end:
        sub.update(cancel_at_period_end=True, cancel_at=end, canceled_at=now)
        sub["cancellation_details"]["reason"] = "cancellation_requested"
    elif cancel_at:
        sub.update(cancel_at=cancel_at, canceled_at=now)
        sub["cancellation_details"]["reason"] = "cancellation_requested"
    store(ctx, sub, extra={})
    emit(ctx, "customer.subscription.created", sub)
    lines = [invoices.period_line(ctx, sub, item, now, end, trial=trialing) for item in items]
    inv = invoices.create(ctx, customer=customer, sub=sub, billing_reason="subscription_create", lines=lines,
                          period_start=now, period_end=now, currency=currency)
    sub["latest_invoice"] = inv["id"]
    store(ctx, sub)
    inv = invoices.finalize(ctx, inv)
    if inv["status"] == "open" and payment_behavior != "default_incomplete":
        error = invoices.collect(ctx, inv, off_session=off_session, authenticated=authenticated)
        if error is not None and payment_behavior == "error_if_incomplete":
            _raise_rolled_back(error)
        if payment_behavior == "error_if_incomplete" and \
                _invoice_intent_status(ctx, inv["id"]) == "requires_action":
            raise CardError("This payment requires authentication.", code="authentication_required",
                            decline_code="authentication_required")
    return reload(ctx, sub_id)


def _trial_end_from(ctx: Ctx, params: Params, prices: list[dict[str, Any]]) -> int | None:
    if "trial_end" in params:
        if params.raw("trial_end") == "now":
            return None
        trial_end = params.int("trial_end", minimum=0)
        if trial_end is not None and trial_end <= ctx.now:
            raise InvalidRequest("Invalid timestamp: must be an integer Unix timestamp in the future.",
                                 param="trial_end")
        return trial_end
    days = params.int("trial_period_days", minimum=0, maximum=730)
    if days is None and params.bool("trial_from_plan", False):
        days = prices[0]["recurring"].get("trial_period_days")
    if days:
        return ctx.now + days * DAY
    return None


def _resolve_default_pm(ctx: Ctx, pm_id: str | None, customer_id: str, param: str) -> str | None:
    if not pm_id:
        return None
    pm = payment_methods.resolve(ctx, pm_id, param, attach_to=customer_id)
    if pm.get("customer") != customer_id:
        raise InvalidRequest(f"The customer does not have a payment method with the ID {pm_id}. The payment method "
                             "must be attached to the customer.", param=param)
    return pm["id"]


# -- endpoints -----------------------------------------------------------------------------------------
CREATE_PARAMS = ["customer", "items", "default_payment_method", "trial_period_days", "trial_end", "trial_from_plan",
                 "metadata", "payment_behavior", "proration_behavior", "off_session", "cancel_at_period_end",
                 "cancel_at", "description", "collection_method", "currency", "automatic_tax", "billing_cycle_anchor",
                 "expand", "add_invoice_items"]
CREATE_PARAMS_UNSUPPORTED = ["payment_settings", "trial_settings", "default_tax_rates", "days_until_due",
                             "backdate_start_date", "pending_invoice_item_interval", "application_fee_percent",
                             "default_source", "invoice_settings", "on_behalf_of", "transfer_data", "billing_mode",
                             "customer_account", "discounts"]


@route("POST", "/subscriptions")
def create_subscription(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(CREATE_PARAMS, unsupported=CREATE_PARAMS_UNSUPPORTED)
    customer = load_param(ctx, params, "customer", "customer", required=True)
    assert customer is not None
    if params.str("collection_method", default="charge_automatically") != "charge_automatically":
        raise InvalidRequest("The sandbox only supports collection_method=charge_automatically.",
                             param="collection_method")
    if "billing_cycle_anchor" in params:
        raise InvalidRequest("The sandbox does not support billing_cycle_anchor on creation: periods start at "
                             "creation (or at the trial end).", param="billing_cycle_anchor")
    payment_behavior = params.enum("payment_behavior", PAYMENT_BEHAVIOURS + ("pending_if_incomplete",),
                                   default="allow_incomplete") or "allow_incomplete"
    if payment_behavior == "pending_if_incomplete":
        raise InvalidRequest("You can only pass payment_behavior=pending_if_incomplete when updating a "
                             "subscription.", param="payment_behavior")
    params.enum("proration_behavior", PRORATION_BEHAVIOURS)
    entries = []
    for entry in params.list_of_dicts("items", required=True):
        entry.reject_unknown(["price", "quantity", "metadata", "plan"],
                             unsupported=["price_data", "discounts", "tax_rates", "billing_thresholds"])
        price = recurring_price(ctx, entry.str("price") or entry.str("plan"), entry.name("price"))
        entries.append((price, entry.int("quantity", default=1, minimum=0) or 0))
    if not entries:
        raise InvalidRequest("Missing required param: items.", code="parameter_missing", param="items")
    default_pm = _resolve_default_pm(ctx, params.str("default_payment_method"), customer["id"],
                                     "default_payment_method")
    cancel_at = params.int("cancel_at", minimum=0)
    off = params.raw("off_session")
    sub = create_subscription_for(
        ctx, customer=customer, entries=entries, default_payment_method=default_pm,
        metadata=params.metadata() or {}, trial_end=_trial_end_from(ctx, params, [p for p, _ in entries]),
        payment_behavior=payment_behavior, off_session=off in ("true", "1"),
        cancel_at_period_end=bool(params.bool("cancel_at_period_end", False)), cancel_at=cancel_at,
        description=params.str("description") or None)
    return sub


@route("GET", "/subscriptions/<sub_id>", params=())
def retrieve_subscription(ctx: Ctx, params: Params, sub_id: str) -> dict[str, Any]:
    return load(ctx, sub_id, "subscription")


UPDATE_PARAMS = ["items", "proration_behavior", "proration_date", "payment_behavior", "cancel_at_period_end",
                 "cancel_at", "default_payment_method", "metadata", "description", "trial_end", "off_session",
                 "cancellation_details", "collection_method", "automatic_tax", "billing_cycle_anchor",
                 "pause_collection", "add_invoice_items", "trial_from_plan"]
UPDATE_PARAMS_UNSUPPORTED = ["payment_settings", "trial_settings", "default_tax_rates", "days_until_due",
                             "pending_invoice_item_interval", "invoice_settings", "default_source", "on_behalf_of",
                             "transfer_data", "application_fee_percent", "discounts"]


@route("POST", "/subscriptions/<sub_id>")
def update_subscription(ctx: Ctx, params: Params, sub_id: str) -> dict[str, Any]:
    params.reject_unknown(UPDATE_PARAMS, unsupported=UPDATE_PARAMS_UNSUPPORTED)
    sub = load(ctx, sub_id, "subscription")
    old = copy.deepcopy(sub)
    if sub["status"] in ENDED:
        allowed = {"metadata", "cancellation_details", "expand"}
        if set(params.data) - allowed:
            raise InvalidRequest("A canceled subscription can only update its cancellation_details and metadata.")
    for unsupported in ("pause_collection", "billing_cycle_anchor", "add_invoice_items"):
        if unsupported in params and params.raw(unsupported) not in ("", None):
            raise InvalidRequest(f"The sandbox does not support {unsupported} yet.", param=unsupported)
    proration_behavior = params.enum("proration_behavior", PRORATION_BEHAVIOURS,
                                     default="create_prorations") or "create_prorations"
    payment_behavior = params.enum("payment_behavior", PAYMENT_BEHAVIOURS + ("pending_if_incomplete",),
                                   default="allow_incomplete") or "allow_incomplete"
    if payment_behavior == "pending_if_incomplete":
        raise InvalidRequest("The sandbox does not support payment_behavior=pending_if_incomplete; use "
                             "error_if_incomplete or allow_incomplete.", param="payment_behavior")
    if params.raw("trial_end") == "now" and sub["status"] == "trialing":
        # Ending a trial now is its own change (new period from now, first invoice); the rest follows.
        _end_trial_now(ctx, sub)
        sub = reload(ctx, sub_id)
        old = copy.deepcopy(sub)
    metadata = params.metadata(sub["metadata"])
    if metadata is not None:
        sub["metadata"] = metadata
    given, description = params.nullable_str("description")
    if given:
        sub["description"] = description
    details = params.dict("cancellation_details")
    if details is not None:
        for key in ("comment", "feedback"):
            given, value = details.nullable_str(key)
            if given:
                sub["cancellation_details"][key] = value
    if sub["status"] in ENDED:
        store(ctx, sub)
        emit_update(ctx, "customer.subscription.updated", old, sub)
        return sub
    given, pm_id = params.nullable_str("default_payment_method")
    if given:
        sub["default_payment_method"] = _resolve_default_pm(ctx, pm_id, sub["customer"], "default_payment_method")
    _apply_cancellation_params(ctx, sub, params)
    if "trial_end" in params and params.raw("trial_end") != "now":
        trial_end = params.int("trial_end", minimum=ctx.now + 1)
        if sub["status"] != "trialing":
            raise InvalidRequest("The sandbox can only move trial_end of a trialing subscription.",
                                 param="trial_end")
        sub["trial_end"] = sub["billing_cycle_anchor"] = trial_end
        for item in items_of(sub):
            item["current_period_end"] = trial_end
    off = params.raw("off_session")
    if params.list("items"):
        planned = plan_change(ctx, sub, params)
        return apply_change(ctx, sub, planned, proration_behavior=proration_behavior,
                            payment_behavior=payment_behavior, old=old, off_session=off in ("true", "1"))
    store(ctx, sub)
    emit_update(ctx, "customer.subscription.updated", old, sub)
    return sub


def _apply_cancellation_params(ctx: Ctx, sub: dict[str, Any], params: Params) -> None:
    touches = "cancel_at_period_end" in params or "cancel_at" in params
    if not touches:
        return
    if sub.get("schedule"):
        raise InvalidRequest(
            f"The subscription is managed by the subscription schedule `{sub['schedule']}`, and updating any "
            "cancelation behavior directly is not allowed. Please update the schedule instead.")
    end = current_period(sub)[1] if sub["status"] != "trialing" else sub["trial_end"]
    if "cancel_at_period_end" in params:
        if params.bool("cancel_at_period_end"):
            sub.update(cancel_at_period_end=True, cancel_at=end, canceled_at=ctx.now)
            sub["cancellation_details"]["reason"] = "cancellation_requested"
        else:
            sub.update(cancel_at_period_end=False, cancel_at=None, canceled_at=None)
            sub["cancellation_details"]["reason"] = None
    if "cancel_at" in params:
        if params.raw("cancel_at") in ("", None):
            sub.update(cancel_at=None, cancel_at_period_end=False, canceled_at=None)
            sub["cancellation_details"]["reason"] = None
        else:
            cancel_at = params.int("cancel_at", minimum=0)
            assert cancel_at is not None
            if cancel_at <= ctx.now:
                raise InvalidRequest("cancel_at must be in the future.", param="cancel_at")
            sub.update(cancel_at=cancel_at, cancel_at_period_end=cancel_at == end, canceled_at=ctx.now)
            sub["cancellation_details"]["reason"] = "cancellation_requested"


@route("DELETE", "/subscriptions/<sub_id>")
def cancel_subscription(ctx: Ctx, params: Params, sub_id: str) -> dict[str, Any]:
    params.reject_unknown(["invoice_now", "prorate", "cancellation_details"])
    sub = load(ctx, sub_id, "subscription")
    if sub["status"] in ENDED:
        raise InvalidRequest(f"A canceled subscription can't be canceled again: {sub_id}")
    details = params.dict("cancellation_details")
    if details is not None:
        sub["cancellation_details"]["comment"] = details.str("comment") or None
        sub["cancellation_details"]["feedback"] = details.str("feedback") or None
    return cancel_now(ctx, sub, reason="cancellation_requested", prorate=bool(params.bool("prorate", False)),
                      invoice_now=bool(params.bool("invoice_now", False)))


@route("GET", "/subscriptions")
def list_subscriptions(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["customer", "price", "plan", "status", "created", "limit", "starting_after",
                           "ending_before", "test_clock"],
                          unsupported=["collection_method", "current_period_end", "current_period_start",
                                       "automatic_tax", "customer_account"])
    status = params.enum("status", STATUSES + ("all", "ended"))
    status_filter: dict[str, Any] = {}
    if status is None:
        status_filter["status_not_in"] = ["canceled"]
    elif status == "ended":
        status_filter["status_in"] = list(ENDED)
    elif status != "all":
        status_filter["status"] = status
    return paginate(ctx, params, "/v1/subscriptions", "subscription", customer=params.str("customer"),
                    ref=params.str("price") or params.str("plan"), clock=params.str("test_clock"), **status_filter)


@route("GET", "/subscription_items/<item_id>", params=())
def retrieve_subscription_item(ctx: Ctx, params: Params, item_id: str) -> dict[str, Any]:
    return load(ctx, item_id, "subscription_item")


@route("GET", "/subscription_items")
def list_subscription_items(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["subscription", "limit", "starting_after", "ending_before"])
    sub = load(ctx, params.str("subscription", required=True), "subscription")
    return list_of(f"/v1/subscription_items?subscription={sub['id']}", items_of(sub), params)


def preview_new(ctx: Ctx, customer: dict[str, Any], details: Params) -> dict[str, Any]:
    """Preview of the first invoice of a subscription not created yet."""
    entries = []
    for entry in details.list_of_dicts("items", required=True):
        price = recurring_price(ctx, entry.str("price"), entry.name("price"))
        entries.append((price, entry.int("quantity", default=1, minimum=0) or 0))
    price = entries[0][0]
    end = period_end_after(ctx.now, ctx.now, price["recurring"]["interval"], price["recurring"]["interval_count"])
    fake = {"id": None, "metadata": {}}
    lines = []
    for price, quantity in entries:
        item = {"id": None, "price": price, "quantity": quantity}
        line = invoices.period_line(ctx, fake, item, ctx.now, end, line_id=new_id("il_tmp"))
        lines.append(line)
    inv = invoices.assemble(ctx, customer=customer, sub=None, billing_reason="subscription_create", lines=lines,
                            period_start=ctx.now, period_end=ctx.now, currency=price["currency"], preview=True)
    return inv

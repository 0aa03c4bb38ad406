"""Subscription schedules, as used for changes that take effect at a period end.

Only schedules made ``from_subscription`` are supported. Phase items replace the
subscription's items position by position (item ids are kept). At a phase
boundary the next phase's prices apply without proration; after the last phase
``end_behavior=release`` leaves the subscription running (schedule ``released``)
and ``cancel`` cancels it (schedule ``completed``).
"""

from __future__ import annotations

import copy
from typing import Any

from ..clock import add_interval
from ..context import Ctx
from ..errors import InvalidRequest
from ..events import emit, emit_update
from ..objects.subscriptions import schedule_phase, subscription_schedule as build_schedule
from ..params import Params
from . import subscriptions
from .common import load, load_param, paginate, route

OPEN = ("not_started", "active")


def _phase_index(ctx: Ctx, schedule: dict[str, Any]) -> int:
    return int(ctx.db.extra(schedule["id"]).get("phase", 0))


def _set_phase(ctx: Ctx, schedule: dict[str, Any], index: int) -> None:
    phases = schedule["phases"]
    if 0 <= index < len(phases):
        schedule["current_phase"] = {"start_date": phases[index]["start_date"], "end_date": phases[index]["end_date"]}
    else:
        schedule["current_phase"] = None
    ctx.db.save(schedule, extra={"phase": index})


def schedule_of(ctx: Ctx, sub: dict[str, Any]) -> dict[str, Any] | None:
    schedule_id = sub.get("schedule")
    schedule = ctx.db.get(schedule_id) if schedule_id else None
    return schedule if schedule and schedule["status"] in OPEN else None


def next_phase(ctx: Ctx, schedule: dict[str, Any]) -> dict[str, Any] | None:
    index = _phase_index(ctx, schedule) + 1
    return schedule["phases"][index] if index < len(schedule["phases"]) else None


def next_boundary_for(ctx: Ctx, sub: dict[str, Any]) -> int | None:
    schedule = schedule_of(ctx, sub)
    if schedule is None or schedule["current_phase"] is None:
        return None
    return schedule["current_phase"]["end_date"]


def boundary_reached(ctx: Ctx, sub: dict[str, Any], now: int) -> bool:
    boundary = next_boundary_for(ctx, sub)
    return boundary is not None and boundary <= now


def _entries_for_phase(sub: dict[str, Any], phase: dict[str, Any], ctx: Ctx) -> list[subscriptions.ItemEntry]:
    current = subscriptions.items_of(sub)
    entries = []
    for index, phase_item in enumerate(phase["items"]):
        price = load(ctx, phase_item["price"], "price")
        item_id = current[index]["id"] if index < len(current) else None
        entries.append(subscriptions.ItemEntry(item_id=item_id, price=price, quantity=phase_item["quantity"]))
    for item in current[len(phase["items"]):]:
        entries.append(subscriptions.ItemEntry(item_id=item["id"], price=None, quantity=None, deleted=True))
    return entries


def _apply_phase(ctx: Ctx, sub: dict[str, Any], phase: dict[str, Any], at: int, proration_behavior: str) -> None:
    entries = _entries_for_phase(sub, phase, ctx)
    planned = subscriptions.compute_change(ctx, sub, entries, at)
    if planned.changed:
        subscriptions.apply_change(ctx, sub, planned, proration_behavior=proration_behavior,
                                   payment_behavior="allow_incomplete", off_session=True)


def advance(ctx: Ctx, sub: dict[str, Any], now: int) -> None:
    """The current phase has ended at ``now``: start the next one, or end the schedule."""
    schedule = schedule_of(ctx, sub)
    if schedule is None:
        return
    old = copy.deepcopy(schedule)
    index = _phase_index(ctx, schedule) + 1
    if index < len(schedule["phases"]):
        _set_phase(ctx, schedule, index)
        emit_update(ctx, "subscription_schedule.updated", old, schedule)
        # At a period boundary nothing remains to prorate; mid-period changes are not prorated either.
        _apply_phase(ctx, sub, schedule["phases"][index], now, "none")
        subscriptions.store(ctx, subscriptions.reload(ctx, sub["id"]))
        return
    if schedule["end_behavior"] == "cancel":
        schedule.update(status="completed", completed_at=now)
        _set_phase(ctx, schedule, index)
        emit(ctx, "subscription_schedule.completed", schedule)
        subscriptions.cancel_now(ctx, subscriptions.reload(ctx, sub["id"]), reason="cancellation_requested", at=now)
        return
    _release(ctx, schedule, sub, now, event="subscription_schedule.released")


def _release(ctx: Ctx, schedule: dict[str, Any], sub: dict[str, Any], at: int, event: str) -> dict[str, Any]:
    old_schedule = copy.deepcopy(schedule)
    schedule.update(status="released", released_at=at, released_subscription=sub["id"], subscription=None)
    _set_phase(ctx, schedule, len(schedule["phases"]))
    emit(ctx, event, schedule, {k: old_schedule[k] for k in ("status", "released_at", "released_subscription",
                                                                "subscription", "current_phase")})
    sub = subscriptions.reload(ctx, sub["id"])
    old_sub = copy.deepcopy(sub)
    sub["schedule"] = None
    subscriptions.store(ctx, sub)
    emit_update(ctx, "customer.subscription.updated", old_sub, sub)
    return schedule


def on_subscription_canceled(ctx: Ctx, sub: dict[str, Any]) -> None:
    schedule = schedule_of(ctx, sub)
    if schedule is None:
        return
    old = copy.deepcopy(schedule)
    schedule.update(status="canceled", canceled_at=ctx.now)
    _set_phase(ctx, schedule, len(schedule["phases"]))
    emit_update(ctx, "subscription_schedule.canceled", old, schedule)


def _phases_from_subscription(sub: dict[str, Any]) -> list[dict[str, Any]]:
    start, end = subscriptions.current_period(sub)
    if sub["status"] == "trialing":
        end = sub["trial_end"]
    items = [{"price": item["price"]["id"], "quantity": item["quantity"]} for item in subscriptions.items_of(sub)]
    return [schedule_phase(start=start, end=end, items=items, currency=sub["currency"],
                           proration_behavior="create_prorations")]


@route("POST", "/subscription_schedules")
def create_schedule(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["from_subscription", "customer", "phases", "start_date", "end_behavior", "metadata"],
                          unsupported=["billing_mode", "customer_account", "default_settings"])
    sub = load_param(ctx, params, "from_subscription", "subscription")
    if sub is None:
        raise InvalidRequest("The sandbox only supports subscription schedules created with from_subscription.",
                             code="parameter_missing", param="from_subscription")
    for key in ("customer", "phases", "start_date", "end_behavior"):
        if key in params:
            raise InvalidRequest(f"You cannot set `{key}` if `from_subscription` is set.", param=key)
    if sub["status"] in subscriptions.ENDED:
        raise InvalidRequest("You cannot create a schedule for a canceled subscription.", param="from_subscription")
    if sub.get("schedule"):
        raise InvalidRequest("You cannot migrate a subscription that is already attached to a schedule: "
                             f"`{sub['schedule']}`.", param="from_subscription")
    schedule = build_schedule(ctx.now, customer=sub["customer"], subscription_id=sub["id"],
                              phases=_phases_from_subscription(sub),
                              end_behavior="cancel" if sub["cancel_at_period_end"] else "release",
                              metadata=params.metadata() or {})
    _set_phase(ctx, schedule, 0)
    emit(ctx, "subscription_schedule.created", schedule)
    old_sub = copy.deepcopy(sub)
    sub["schedule"] = schedule["id"]
    if sub["cancel_at_period_end"]:
        # The schedule now owns the cancellation (end_behavior=cancel).
        sub.update(cancel_at_period_end=False, cancel_at=None)
    subscriptions.store(ctx, sub)
    emit_update(ctx, "customer.subscription.updated", old_sub, sub)
    return load(ctx, schedule["id"], "subscription_schedule")


def _parse_phases(ctx: Ctx, params: Params, schedule: dict[str, Any], sub: dict[str, Any]) -> list[dict[str, Any]]:
    current = schedule["phases"][_phase_index(ctx, schedule)]
    phases: list[dict[str, Any]] = []
    start = current["start_date"]
    raw_phases = params.list_of_dicts("phases", required=True)
    for index, phase in enumerate(raw_phases):
        phase.reject_unknown(["items", "start_date", "end_date", "duration", "iterations", "proration_behavior",
                              "metadata", "trial_end", "currency"],
                             unsupported=["default_payment_method", "description", "add_invoice_items",
                                          "automatic_tax", "billing_cycle_anchor", "collection_method",
                                          "default_tax_rates", "invoice_settings", "on_behalf_of", "transfer_data",
                                          "trial", "application_fee_percent", "discounts", "billing_thresholds"])
        if "start_date" in phase:
            given = phase.timestamp("start_date", ctx.now)
            if index == 0 and given != current["start_date"]:
                raise InvalidRequest("You can not modify the start date of the current phase.",
                                     param=phase.name("start_date"))
            if index > 0 and given != start:
                raise InvalidRequest("Phases must be contiguous: each start_date must equal the previous "
                                     "end_date.", param=phase.name("start_date"))
        items = []
        for item in phase.list_of_dicts("items", required=True):
            item.reject_unknown(["price", "quantity", "metadata", "plan"],
                                unsupported=["price_data", "tax_rates", "discounts", "billing_thresholds"])
            price = subscriptions.recurring_price(ctx, item.str("price") or item.str("plan"), item.name("price"),
                                                  sub["currency"])
            items.append({"price": price["id"], "quantity": item.int("quantity", default=1, minimum=0) or 0,
                          "_recurring": price["recurring"]})
        recurring = items[0].pop("_recurring")
        for item in items[1:]:
            item.pop("_recurring", None)
        end: int | None
        if "end_date" in phase:
            end = phase.timestamp("end_date", ctx.now)
        elif "duration" in phase:
            duration = phase.dict("duration")
            assert duration is not None
            end = add_interval(start, duration.enum("interval", ["day", "week", "month", "year"], required=True) or "",
                               duration.int("interval_count", default=1, minimum=1) or 1)
        else:
            iterations = phase.int("iterations", default=1, minimum=1) or 1
            end = add_interval(start, recurring["interval"], recurring["interval_count"] * iterations)
        assert end is not None
        if end <= start:
            raise InvalidRequest("The end_date of a phase must be after its start_date.", param=phase.name("end_date"))
        phases.append(schedule_phase(
            start=start, end=end, items=items, currency=sub["currency"],
            proration_behavior=phase.enum("proration_behavior", subscriptions.PRORATION_BEHAVIOURS,
                                          default="create_prorations") or "create_prorations",
            metadata=phase.metadata() or {}))
        start = end
    return phases


@route("POST", "/subscription_schedules/<schedule_id>")
def update_schedule(ctx: Ctx, params: Params, schedule_id: str) -> dict[str, Any]:
    params.reject_unknown(["phases", "end_behavior", "proration_behavior", "metadata"],
                          unsupported=["default_settings"])
    schedule = load(ctx, schedule_id, "subscription_schedule")
    if schedule["status"] not in OPEN:
        raise InvalidRequest(f"You cannot update a subscription schedule that is currently in the "
                             f"`{schedule['status']}` status. It must be in one of the following statuses: "
                             "`not_started`, `active`.")
    sub = subscriptions.reload(ctx, schedule["subscription"])
    old = copy.deepcopy(schedule)
    metadata = params.metadata(schedule["metadata"])
    if metadata is not None:
        schedule["metadata"] = metadata
    if "end_behavior" in params:
        schedule["end_behavior"] = params.enum("end_behavior", ["release", "cancel"])
    proration_behavior = params.enum("proration_behavior", subscriptions.PRORATION_BEHAVIOURS,
                                     default="create_prorations") or "create_prorations"
    if "phases" in params:
        phases = _parse_phases(ctx, params, schedule, sub)
        # Earlier, completed phases are kept; the given list starts at the current phase.
        index = _phase_index(ctx, schedule)
        schedule["phases"] = schedule["phases"][:index] + phases
        _set_phase(ctx, schedule, index)
        ctx.db.save(schedule)
        emit_update(ctx, "subscription_schedule.updated", old, schedule)
        # A different current phase applies now, as Stripe does.
        _apply_phase(ctx, sub, phases[0], min(max(ctx.now, subscriptions.current_period(sub)[0]),
                                              subscriptions.current_period(sub)[1]), proration_behavior)
        subscriptions.store(ctx, subscriptions.reload(ctx, sub["id"]))
    else:
        ctx.db.save(schedule)
        emit_update(ctx, "subscription_schedule.updated", old, schedule)
    return load(ctx, schedule_id, "subscription_schedule")


@route("GET", "/subscription_schedules/<schedule_id>", params=())
def retrieve_schedule(ctx: Ctx, params: Params, schedule_id: str) -> dict[str, Any]:
    return load(ctx, schedule_id, "subscription_schedule")


@route("POST", "/subscription_schedules/<schedule_id>/release")
def release_schedule(ctx: Ctx, params: Params, schedule_id: str) -> dict[str, Any]:
    params.reject_unknown([], unsupported=["preserve_cancel_date"])
    schedule = load(ctx, schedule_id, "subscription_schedule")
    if schedule["status"] not in OPEN:
        raise InvalidRequest(f"You cannot release a subscription schedule that is currently in the "
                             f"`{schedule['status']}` status. It must be in one of the following statuses: "
                             "`not_started`, `active`.")
    sub = subscriptions.reload(ctx, schedule["subscription"])
    _release(ctx, schedule, sub, ctx.now, event="subscription_schedule.released")
    return load(ctx, schedule_id, "subscription_schedule")


@route("POST", "/subscription_schedules/<schedule_id>/cancel")
def cancel_schedule(ctx: Ctx, params: Params, schedule_id: str) -> dict[str, Any]:
    params.reject_unknown(["invoice_now", "prorate"])
    schedule = load(ctx, schedule_id, "subscription_schedule")
    if schedule["status"] not in OPEN:
        raise InvalidRequest(f"You cannot cancel a subscription schedule that is currently in the "
                             f"`{schedule['status']}` status. It must be in one of the following statuses: "
                             "`not_started`, `active`.")
    sub = subscriptions.reload(ctx, schedule["subscription"])
    subscriptions.cancel_now(ctx, sub, reason="cancellation_requested",
                             prorate=bool(params.bool("prorate", True)),
                             invoice_now=bool(params.bool("invoice_now", True)))
    return load(ctx, schedule_id, "subscription_schedule")


@route("GET", "/subscription_schedules")
def list_schedules(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["customer", "created", "limit", "starting_after", "ending_before"],
                          unsupported=["scheduled", "canceled_at", "completed_at", "released_at", "customer_account"])
    return paginate(ctx, params, "/v1/subscription_schedules", "subscription_schedule",
                    customer=params.str("customer"))

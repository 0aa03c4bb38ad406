"""Test clocks, as in Stripe's test mode (``test_helpers.test_clock``).

Each clock has its own ``frozen_time`` and the customers created on it (and their
subscriptions, invoices, schedules). Advancing is asynchronous: the request answers the
clock ``advancing``; the sandbox then runs, in time order, everything that falls due on
that clock up to the target (renewals, trial ends, cancellations, schedule phases, invoice
finalization an hour after a renewal) and makes the clock ``ready``. Each step emits its
``test_helpers.test_clock.*`` event. Work of objects on no clock runs in wall time
(``catch_up``, before each write).
"""

from __future__ import annotations

import logging
from typing import Any

from .. import clock
from ..context import Ctx
from ..errors import InvalidRequest, ResourceMissing
from ..events import emit
from ..ids import new_id
from ..params import Params
from .common import LIST_PARAMS, paginate, route

log = logging.getLogger("sandbox.clock")

DELETES_AFTER = 30 * 86400


def _handlers() -> dict[str, Any]:
    from . import checkout_sessions, invoices, subscriptions

    return {"subscription": subscriptions.process_due, "checkout.session": checkout_sessions.process_due,
            "invoice": invoices.process_due}


def run_due(ctx: Ctx, clock_id: str | None, until: int) -> int:
    """Process the due work of the objects on ``clock_id`` up to ``until``, in time order."""
    handlers = _handlers()
    steps = 0
    floor = ctx.now
    while True:
        due = ctx.db.next_due(clock_id, until)
        if due is None:
            break
        object_id, at = due
        obj = ctx.db.get(object_id)
        # Overdue work (due before the time it is noticed) runs "now", so event times never go back.
        ctx.now = max(at, floor)
        floor = ctx.now
        handler = handlers.get(obj["object"]) if obj else None
        if handler is None:
            ctx.db.set_due(object_id, None)
            continue
        handler(ctx, obj)
        steps += 1
        row = ctx.db.conn.execute("SELECT due_at FROM objects WHERE id = ?", (object_id,)).fetchone()
        if row and row[0] is not None and row[0] <= at:
            log.warning("%s stayed due at %s after processing; dropping it from the clock", object_id, at)
            ctx.db.set_due(object_id, None)
    ctx.now = max(until, floor)
    return steps


def catch_up(ctx: Ctx) -> None:
    """Run what fell due in wall time for objects on no test clock (Stripe does it in the background)."""
    run_due(ctx, None, ctx.now)


def _load(ctx: Ctx, clock_id: str) -> dict[str, Any]:
    obj = clock.load_clock(ctx.db, clock_id)
    if obj is None:
        raise ResourceMissing("test_clock", clock_id)
    return obj


@route("GET", "/test_helpers/test_clocks/<clock_id>", params=())
def retrieve_clock(ctx: Ctx, params: Params, clock_id: str) -> dict[str, Any]:
    return _load(ctx, clock_id)


@route("GET", "/test_helpers/test_clocks", params=LIST_PARAMS)
def list_clocks(ctx: Ctx, params: Params) -> dict[str, Any]:
    return paginate(ctx, params, "/v1/test_helpers/test_clocks", clock.CLOCK_OBJECT)


@route("POST", "/test_helpers/test_clocks")
def create_clock(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["frozen_time", "name"])
    frozen_time = params.int("frozen_time", required=True, minimum=0)
    assert frozen_time is not None
    obj = new_clock(ctx, frozen_time, params.str("name") or None)
    emit(ctx, "test_helpers.test_clock.created", obj)
    return obj


def new_clock(ctx: Ctx, frozen_time: int, name: str | None) -> dict[str, Any]:
    created = clock.wall_now()
    obj = {
        "id": new_id("clock"),
        "object": clock.CLOCK_OBJECT,
        "created": created,
        "deletes_after": created + DELETES_AFTER,
        "frozen_time": frozen_time,
        "livemode": False,
        "name": name,
        "status": "ready",
        "status_details": {},
    }
    ctx.db.save(obj)
    return obj


@route("DELETE", "/test_helpers/test_clocks/<clock_id>", params=())
def delete_clock(ctx: Ctx, params: Params, clock_id: str) -> dict[str, Any]:
    """Deleting a clock deletes it and every object that lives on it, as Stripe does."""
    obj = _load(ctx, clock_id)
    ctx.db.conn.execute("DELETE FROM objects WHERE clock = ? OR id = ?", (clock_id, clock_id))
    emit(ctx, "test_helpers.test_clock.deleted", obj)
    return {"id": clock_id, "object": clock.CLOCK_OBJECT, "deleted": True}


@route("POST", "/test_helpers/test_clocks/<clock_id>/advance")
def advance_clock(ctx: Ctx, params: Params, clock_id: str) -> dict[str, Any]:
    params.reject_unknown(["frozen_time"])
    obj = _load(ctx, clock_id)
    target = params.int("frozen_time", required=True, minimum=0)
    assert target is not None
    if obj["status"] != "ready":
        raise InvalidRequest(f"The test clock {clock_id} is {obj['status']}: wait until it is ready to advance "
                             "it again.", param="test_clock")
    if target <= obj["frozen_time"]:
        raise InvalidRequest(f"The test clock can only move forward: frozen_time {target} is not after its current "
                             f"frozen_time {obj['frozen_time']}.", param="frozen_time")
    obj["status"] = "advancing"
    obj["status_details"] = {"advancing": {"target_frozen_time": target}}
    ctx.db.save(obj)
    emit(ctx, "test_helpers.test_clock.advancing", obj)
    ctx.clocks_to_advance.append(clock_id)  # run by the sandbox's clock worker once this commits
    return obj


def finish_advance(ctx: Ctx, clock_id: str) -> None:
    """The asynchronous part of an advance: run what fell due, then the clock is ready at its target."""
    obj = clock.load_clock(ctx.db, clock_id)
    if obj is None or obj["status"] != "advancing":
        return
    target = int(obj["status_details"]["advancing"]["target_frozen_time"])
    ctx.now = int(obj["frozen_time"])
    run_due(ctx, clock_id, target)
    obj = clock.load_clock(ctx.db, clock_id) or obj
    obj.update(frozen_time=target, status="ready", status_details={})
    ctx.db.save(obj)
    ctx.now = target
    emit(ctx, "test_helpers.test_clock.ready", obj)

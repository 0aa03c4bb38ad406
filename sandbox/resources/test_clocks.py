"""The sandbox's single test clock, shaped like Stripe's ``test_helpers.test_clock``.

Advancing it moves sandbox time forward and then runs everything that falls
due in between, in time order across all objects (renewals, trial ends,
cancellations, schedule phases, checkout expiry).
"""

from __future__ import annotations

import logging
from typing import Any

from .. import clock
from ..context import Ctx
from ..errors import InvalidRequest, ResourceMissing
from ..events import emit
from ..objects.misc import SANDBOX_CLOCK_ID, sandbox_clock
from ..params import Params
from .common import LIST_PARAMS, route

log = logging.getLogger("sandbox.clock")


def current(ctx: Ctx) -> dict[str, Any]:
    created = ctx.db.meta("clock_created") or ctx.now  # set when the sandbox starts or is reset
    return sandbox_clock(created=int(created), frozen_time=ctx.now)


def _handlers() -> dict[str, Any]:
    from . import checkout_sessions, subscriptions

    return {"subscription": subscriptions.process_due, "checkout.session": checkout_sessions.process_due}


def run_due(ctx: Ctx, until: int) -> int:
    """Process due work up to ``until`` in time order; returns how many steps ran."""
    handlers = _handlers()
    steps = 0
    floor = ctx.now
    while True:
        due = ctx.db.next_due(until)
        if due is None:
            break
        object_id, at = due
        obj = ctx.db.get(object_id)
        # Overdue work (wall time passed without an advance) runs "now", so event times never go back.
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


def _check_id(clock_id: str) -> None:
    if clock_id != SANDBOX_CLOCK_ID:
        raise ResourceMissing("test_clock", clock_id)


@route("GET", "/test_helpers/test_clocks/<clock_id>", params=())
def retrieve_clock(ctx: Ctx, params: Params, clock_id: str) -> dict[str, Any]:
    _check_id(clock_id)
    return current(ctx)


@route("GET", "/test_helpers/test_clocks", params=LIST_PARAMS)
def list_clocks(ctx: Ctx, params: Params) -> dict[str, Any]:
    return {"object": "list", "data": [current(ctx)], "has_more": False, "url": "/v1/test_helpers/test_clocks"}


@route("POST", "/test_helpers/test_clocks")
def create_clock(ctx: Ctx, params: Params) -> dict[str, Any]:
    """There is one clock; "creating" one returns it (and moves it forward to ``frozen_time`` if later)."""
    params.reject_unknown(["frozen_time", "name"])
    target = params.int("frozen_time", minimum=0)
    if target is not None and target > ctx.now:
        return _advance(ctx, target)
    return current(ctx)


@route("POST", "/test_helpers/test_clocks/<clock_id>/advance")
def advance_clock(ctx: Ctx, params: Params, clock_id: str) -> dict[str, Any]:
    _check_id(clock_id)
    params.reject_unknown(["frozen_time"])
    target = params.int("frozen_time", required=True, minimum=0)
    assert target is not None
    if target < ctx.now:
        raise InvalidRequest(f"The test clock can only move forward: frozen_time {target} is before the current "
                             f"time {ctx.now}.", param="frozen_time")
    return _advance(ctx, target)


def _advance(ctx: Ctx, target: int) -> dict[str, Any]:
    clock.move_to(ctx.db, target)
    emit(ctx, "test_helpers.test_clock.advancing", dict(current(ctx), status="advancing", frozen_time=ctx.now))
    run_due(ctx, target)
    ready = current(ctx)
    emit(ctx, "test_helpers.test_clock.ready", ready)
    return ready

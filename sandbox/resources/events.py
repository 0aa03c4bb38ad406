"""Events: retrieve and list (newest first)."""

from __future__ import annotations

import json
from typing import Any

from ..context import Ctx
from ..errors import InvalidRequest, ResourceMissing
from ..params import Params
from .common import paginate, route


@route("GET", "/events/<event_id>", params=())
def retrieve_event(ctx: Ctx, params: Params, event_id: str) -> dict[str, Any]:
    row = ctx.db.conn.execute("SELECT data FROM events WHERE id = ?", (event_id,)).fetchone()
    if row is None:
        raise ResourceMissing("event", event_id)
    return json.loads(row[0])


@route("GET", "/events")
def list_events(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["type", "types", "created", "limit", "starting_after", "ending_before"],
                          unsupported=["delivery_success", "object_id"])
    event_type = params.str("type")
    types = params.str_list("types")
    if event_type and types:
        raise InvalidRequest("You may only specify one of these parameters: type, types.", param="types")
    if len(types) > 20:
        raise InvalidRequest("You may pass at most 20 types.", param="types")
    if types:
        # Several exact types: merge per-type pages (each is index-ordered), then cut.
        pages = [paginate(ctx, params, "/v1/events", t, table="events") for t in types]
        data = sorted((e for page in pages for e in page["data"]), key=lambda e: (e["created"], e["id"]),
                      reverse=True)
        limit = params.int("limit", default=10, minimum=1, maximum=100) or 10
        if params.str("ending_before"):
            data = data[-limit:]
        more = len(data) > limit or any(page["has_more"] for page in pages)
        return {"object": "list", "data": data[:limit], "has_more": more, "url": "/v1/events"}
    prefix = False
    if event_type and event_type.endswith("*"):
        event_type, prefix = event_type[:-1], True
    return paginate(ctx, params, "/v1/events", event_type or "", table="events", type_prefix=prefix)

"""Routing registry and helpers shared by every resource module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..context import Ctx
from ..errors import InvalidRequest, ResourceMissing
from ..params import Params

Handler = Callable[..., Any]


@dataclass(frozen=True)
class Route:
    method: str
    rule: str
    handler: Handler
    # Parameters the server checks before the handler runs (``None``: the handler checks them).
    params: tuple[str, ...] | None = None

    @property
    def writes(self) -> bool:
        return self.method in ("POST", "DELETE")


ROUTES: list[Route] = []


LIST_PARAMS = ("limit", "starting_after", "ending_before")


def route(method: str, rule: str, params: tuple[str, ...] | None = None) -> Callable[[Handler], Handler]:
    """Register ``handler(ctx, params, **path_args)`` for ``METHOD rule`` under /v1.

    ``params`` names what the endpoint takes (``expand`` always); the server refuses anything else
    before the handler runs, on GET and DELETE as on POST. Without it the handler checks its own.
    """

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, rule, handler, params))
        return handler

    return register


# How Stripe names each object type in "No such ..." messages.
LABELS = {
    "customer": "customer", "product": "product", "price": "price",
    "payment_method": "PaymentMethod", "setup_intent": "setupintent",
    "payment_intent": "payment_intent", "charge": "charge", "refund": "refund",
    "checkout.session": "checkout.session", "subscription": "subscription",
    "subscription_item": "subscription_item", "subscription_schedule": "subscription_schedule",
    "invoice": "invoice", "invoice_payment": "invoice_payment", "invoiceitem": "invoiceitem",
    "event": "event", "webhook_endpoint": "webhook_endpoint",
}


def load(ctx: Ctx, object_id: str | None, object_type: str, param: str | None = "id") -> dict[str, Any]:
    """The object, or Stripe's 404 ``resource_missing`` (also when the id names another type)."""
    obj = ctx.db.get(object_id) if object_id else None
    if obj is None or obj.get("object") != object_type:
        raise ResourceMissing(LABELS.get(object_type, object_type), object_id or "", param)
    return obj


def load_param(ctx: Ctx, params: Params, key: str, object_type: str, required: bool = False) -> dict[str, Any] | None:
    """Load the object an id parameter names; a bad id is a 400 on that param, as in Stripe."""
    object_id = params.str(key, required=required)
    if not object_id:
        return None
    obj = ctx.db.get(object_id)
    if obj is None or obj.get("object") != object_type or obj.get("deleted"):
        raise InvalidRequest(f"No such {LABELS.get(object_type, object_type)}: '{object_id}'",
                             code="resource_missing", param=params.name(key))
    return obj


def paginate(ctx: Ctx, params: Params, url: str, object_type: str, *,
             table: str = "objects", type_column: str = "type",
             type_prefix: bool = False, **filters: Any) -> dict[str, Any]:
    """A Stripe list object, newest first, with keyset pagination and ``created`` filters."""
    limit = params.int("limit", default=10, minimum=1, maximum=100)
    cursors = {}
    for key in ("starting_after", "ending_before"):
        cursor_id = params.str(key)
        if cursor_id:
            cursor = ctx.db.cursor_of(cursor_id, table)
            if cursor is None:
                raise InvalidRequest(f"No such object: '{cursor_id}'", code="resource_missing", param=key)
            cursors[key] = cursor
    equals = {k: v for k, v in filters.items()
              if k in ("customer", "subscription", "status", "parent", "ref", "clock") and v is not None}
    data, has_more = ctx.db.page(
        object_type,
        equals=equals,
        status_in=filters.get("status_in"),
        status_not_in=filters.get("status_not_in"),
        ref_in=filters.get("ref_in"),
        created=params.created_range() if "created" in params else None,
        limit=limit or 10,
        starting_after=cursors.get("starting_after"),
        ending_before=cursors.get("ending_before"),
        table=table,
        type_column=type_column,
        type_prefix=type_prefix,
    )
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def list_of(url: str, data: list[dict[str, Any]], params: Params) -> dict[str, Any]:
    """Paginate an in-memory list (newest first) the same way as a stored one."""
    limit = params.int("limit", default=10, minimum=1, maximum=100) or 10
    after, before = params.str("starting_after"), params.str("ending_before")
    ids = [item["id"] for item in data]
    if after:
        if after not in ids:
            raise InvalidRequest(f"No such object: '{after}'", code="resource_missing", param="starting_after")
        data = data[ids.index(after) + 1:]
    elif before:
        if before not in ids:
            raise InvalidRequest(f"No such object: '{before}'", code="resource_missing", param="ending_before")
        data = data[:ids.index(before)]
        more = len(data) > limit
        return {"object": "list", "data": data[-limit:], "has_more": more, "url": url}
    return {"object": "list", "data": data[:limit], "has_more": len(data) > limit, "url": url}


# Properties Stripe sends only when expanded ("includable"), by (object type, property).
INCLUDABLE: dict[tuple[Any, str], Callable[[Ctx, dict[str, Any]], Any]] = {}


def includable(object_type: str, prop: str) -> Callable[[Callable[[Ctx, dict[str, Any]], Any]], Any]:
    def register(builder: Callable[[Ctx, dict[str, Any]], Any]) -> Any:
        INCLUDABLE[(object_type, prop)] = builder
        return builder
    return register


def expand(ctx: Ctx, obj: Any, paths: list[str]) -> Any:
    """Replace id strings with the objects they name, along dotted paths (``data.`` for lists)."""
    for path in paths:
        if len([part for part in path.split(".") if part != "data"]) > 4:
            raise InvalidRequest(f"You cannot expand more than 4 levels of a property. "
                                 f"Property: {path}", param="expand")
        obj = _expand_path(ctx, obj, path.split("."), path)
    return obj


def _expand_path(ctx: Ctx, node: Any, parts: list[str], full: str) -> Any:
    if not parts:
        return node
    if isinstance(node, list):
        return [_expand_path(ctx, item, parts, full) for item in node]
    if not isinstance(node, dict):
        return node
    head, rest = parts[0], parts[1:]
    include = INCLUDABLE.get((node.get("object"), head))
    if head not in node and include is not None:
        node = dict(node)
        node[head] = include(ctx, node)
    if head not in node:
        raise InvalidRequest(f"This property cannot be expanded ({full}).", param="expand")
    value = node[head]
    if isinstance(value, str) and head != "id":
        loaded = ctx.db.get(value)
        if loaded is None:
            raise InvalidRequest(f"This property cannot be expanded ({full}).", param="expand")
        value = loaded
    node = dict(node)
    node[head] = _expand_path(ctx, value, rest, full)
    return node

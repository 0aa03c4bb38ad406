"""Webhook endpoints managed through the API (the command-line one is listed too)."""

from __future__ import annotations

from typing import Any

from ..context import Ctx
from ..errors import InvalidRequest
from ..ids import new_id
from ..objects.misc import webhook_endpoint as build_endpoint
from ..params import Params
from ..webhooks import new_secret
from .common import load, paginate, route


def _events(params: Params) -> list[str]:
    events = params.str_list("enabled_events")
    if not events:
        raise InvalidRequest("Missing required param: enabled_events.", code="parameter_missing",
                             param="enabled_events")
    return events


def _url(params: Params) -> str:
    url = params.str("url", required=True) or ""
    if not url.startswith(("http://", "https://")):
        raise InvalidRequest("Invalid URL: must start with http:// or https://", param="url")
    return url


@route("POST", "/webhook_endpoints")
def create_endpoint(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["url", "enabled_events", "description", "metadata"], unsupported=["api_version", "connect"])
    endpoint = build_endpoint(ctx.now, endpoint_id=new_id("we"), url=_url(params), enabled_events=_events(params),
                              description=params.str("description") or None, metadata=params.metadata() or {})
    secret = new_secret()
    ctx.db.save(endpoint, extra={"secret": secret, "source": "api"})
    return dict(endpoint, secret=secret)  # Stripe shows the secret on creation only


@route("GET", "/webhook_endpoints/<endpoint_id>", params=())
def retrieve_endpoint(ctx: Ctx, params: Params, endpoint_id: str) -> dict[str, Any]:
    return load(ctx, endpoint_id, "webhook_endpoint")


@route("POST", "/webhook_endpoints/<endpoint_id>")
def update_endpoint(ctx: Ctx, params: Params, endpoint_id: str) -> dict[str, Any]:
    params.reject_unknown(["url", "enabled_events", "description", "metadata", "disabled"])
    endpoint = load(ctx, endpoint_id, "webhook_endpoint")
    if "url" in params:
        endpoint["url"] = _url(params)
    if "enabled_events" in params:
        endpoint["enabled_events"] = _events(params)
    given, description = params.nullable_str("description")
    if given:
        endpoint["description"] = description
    metadata = params.metadata(endpoint["metadata"])
    if metadata is not None:
        endpoint["metadata"] = metadata
    if "disabled" in params:
        endpoint["status"] = "disabled" if params.bool("disabled") else "enabled"
    ctx.db.save(endpoint)
    return endpoint


@route("DELETE", "/webhook_endpoints/<endpoint_id>", params=())
def delete_endpoint(ctx: Ctx, params: Params, endpoint_id: str) -> dict[str, Any]:
    load(ctx, endpoint_id, "webhook_endpoint")
    ctx.db.delete(endpoint_id)
    ctx.db.conn.execute("UPDATE webhook_queue SET state = 'dropped' WHERE endpoint_id = ? AND state = 'pending'",
                        (endpoint_id,))
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


@route("GET", "/webhook_endpoints")
def list_endpoints(ctx: Ctx, params: Params) -> dict[str, Any]:
    params.reject_unknown(["limit", "starting_after", "ending_before"])
    return paginate(ctx, params, "/v1/webhook_endpoints", "webhook_endpoint")

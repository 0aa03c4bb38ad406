"""Event creation: every state change is recorded as Stripe would report it."""

from __future__ import annotations

import json
from typing import Any

from . import API_VERSION
from .context import Ctx
from .ids import new_id


def changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``previous_attributes``: the old values of whatever changed.

    Plain nested hashes (metadata, status_transitions, ...) are diffed key by
    key, as Stripe does; lists and nested API objects are given whole.
    """
    previous: dict[str, Any] = {}
    for key in set(old) | set(new):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict) and "object" not in before:
            previous[key] = changes(before, after)
        else:
            previous[key] = before
    return previous


def endpoint_wants(endpoint: dict[str, Any], event_type: str) -> bool:
    if endpoint.get("status") != "enabled":
        return False
    for pattern in endpoint.get("enabled_events") or []:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def emit(ctx: Ctx, event_type: str, obj: dict[str, Any],
         previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record an event about ``obj`` (its state after the change) and queue its webhooks."""
    endpoints = [e for e in ctx.db.find("webhook_endpoint") if endpoint_wants(e, event_type)]
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    event = {
        "id": new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": ctx.now,
        "data": data,
        "livemode": False,
        "pending_webhooks": len(endpoints),
        "request": {"id": ctx.request_id, "idempotency_key": ctx.idempotency_key},
        "type": event_type,
    }
    cursor = ctx.db.conn.execute(
        "INSERT INTO events (id, type, created, data) VALUES (?, ?, ?, ?)",
        (event["id"], event_type, ctx.now, json.dumps(event, separators=(",", ":"))))
    seq = cursor.lastrowid
    for endpoint in endpoints:
        ctx.db.conn.execute(
            "INSERT INTO webhook_queue (event_seq, event_id, endpoint_id, next_at) VALUES (?, ?, ?, 0)",
            (seq, event["id"], endpoint["id"]))
    ctx.emitted.append(event)
    return event


def emit_update(ctx: Ctx, event_type: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """An ``*.updated`` event, or nothing when nothing visible changed."""
    previous = changes(old, new)
    if not previous:
        return None
    return emit(ctx, event_type, new, previous)

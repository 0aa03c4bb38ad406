"""Sandbox-only control endpoints under ``/_sandbox/`` (no auth: local tool for tests)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request

from . import API_VERSION, clock
from .errors import InvalidRequest, StripeError
from .resources import test_clocks
from .seed import bulk_seed

control = Blueprint("control", __name__, url_prefix="/_sandbox")


def _box():
    from .server import sandbox

    return sandbox()


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, indent=2), status=status, mimetype="application/json")


def _body() -> dict[str, Any]:
    if request.is_json:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else {}
    return {key: value for key, value in request.values.items()}


def _int(data: dict[str, Any], key: str, default: int | None = None, minimum: int = 0) -> int:
    value = data.get(key, default)
    if value is None:
        raise InvalidRequest(f"Missing required field: {key}.", param=key)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{key} must be an integer.", param=key) from None
    if number < minimum:
        raise InvalidRequest(f"{key} must be at least {minimum}.", param=key)
    return number


@control.errorhandler(StripeError)
def _error(error: StripeError) -> Response:
    return _json(error.to_json(), error.status)


@control.post("/reset")
def reset() -> Response:
    """Empty every table (test clocks too); command-line webhook endpoints stay.

    ``{"test_clock": {"frozen_time": T, "name": N}}`` then makes one test clock, as the API would but
    without its ``test_helpers.test_clock.created`` event, so a test starts from an empty event list.
    """
    box = _box()
    box.reset()
    wanted = _body().get("test_clock")
    if not isinstance(wanted, dict):
        return _json({"reset": True})
    frozen_time = _int(wanted, "frozen_time", clock.wall_now())
    with box.unit_of_work(request.host_url) as ctx:
        made = test_clocks.new_clock(ctx, frozen_time, str(wanted.get("name") or "sandbox"))
    return _json({"reset": True, "test_clock": made["id"]})


@control.get("/health")
def health() -> Response:
    """Liveness, sandbox time and where state lives."""
    box = _box()
    return _json({"status": "ok", "api_version": API_VERSION, "now": clock.wall_now(), "db": box.settings.db_path})


@control.get("/deliveries")
def deliveries() -> Response:
    """Every webhook delivery attempt, oldest first (filters: event, endpoint, type, limit)."""
    clauses, values = [], []
    for key, column in (("event", "event_id"), ("endpoint", "endpoint_id"), ("type", "event_type")):
        if request.args.get(key):
            clauses.append(f"{column} = ?")
            values.append(request.args[key])
    where = " AND ".join(clauses) or "1"
    limit = min(_int(dict(request.args), "limit", 10000, minimum=1), 100000)
    with _box().store.read() as db:
        rows = db.conn.execute(
            "SELECT id, event_id, event_type, endpoint_id, url, attempt, status, error, outcome, at, duration_ms"
            f" FROM webhook_attempts WHERE {where} ORDER BY id LIMIT ?", (*values, limit)).fetchall()
    keys = ("id", "event", "event_type", "endpoint", "url", "attempt", "status", "error", "outcome", "at",
            "duration_ms")
    return _json([dict(zip(keys, row)) for row in rows])


@control.get("/deliveries/pending")
def pending_deliveries() -> Response:
    """Queued deliveries not yet delivered nor given up (useful to wait for quiet)."""
    with _box().store.read() as db:
        count = db.conn.execute("SELECT COUNT(*) FROM webhook_queue WHERE state = 'pending'").fetchone()[0]
    return _json({"pending": count})


@control.post("/fail")
def fail() -> Response:
    """Make the next N /v1 requests fail with a status, or hang for some seconds first."""
    data = _body()
    count = _int(data, "count", 1)
    delay = data.get("delay_seconds")
    if delay is not None:
        try:
            seconds = float(delay)
        except (TypeError, ValueError):
            raise InvalidRequest("delay_seconds must be a number.", param="delay_seconds") from None
        if not 0 <= seconds <= 300:
            raise InvalidRequest("delay_seconds must be between 0 and 300.", param="delay_seconds")
        _box().faults.arm(count, delay=seconds)
        return _json({"count": count, "delay_seconds": seconds})
    status = _int(data, "status", 500)
    if not 500 <= status <= 599:
        raise InvalidRequest("status must be a 5xx code.", param="status")
    _box().faults.arm(count, status=status)
    return _json({"count": count, "status": status})


@control.post("/bulk_seed")
def seed() -> Response:
    """Insert N customers with active subscriptions and K paid invoices each, in one transaction."""
    data = _body()
    count = _int(data, "subscriptions")
    per = _int(data, "invoices_per_subscription", 1)
    price = data.get("price")
    if not price:
        raise InvalidRequest("Missing required field: price.", param="price")
    test_clock, card = data.get("test_clock"), data.get("card")
    return _json(bulk_seed(_box(), request.host_url, count, per, str(price),
                           test_clock=str(test_clock) if test_clock else None, card=str(card) if card else None))


@control.get("/stats")
def stats() -> Response:
    """How many /v1 requests were served, per endpoint."""
    return _json(_box().stats.snapshot())


@control.delete("/stats")
def clear_stats() -> Response:
    """Start counting from zero."""
    _box().stats.clear()
    return _json(_box().stats.snapshot())

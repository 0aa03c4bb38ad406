"""Probes and metrics, for load balancers, deploy scripts and Prometheus; no session, no page chrome.

``/readyz`` asks the database, Redis and the gateway, each with a short timeout, and
answers 503 naming what failed. The gateway is asked at most every
``GATEWAY_CHECK_SECONDS`` per process (a probe every second must not become a call
to Stripe every second). ``/metrics`` is open to the machine itself and needs
``Authorization: Bearer $METRICS_TOKEN`` from anywhere else.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from flask import Blueprint, Response, abort, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis import Redis
from sqlalchemy import text
from sqlalchemy.orm import Session

from billing import metrics
from portal.extensions import csrf, db
from portal.payments import gateway

log = logging.getLogger(__name__)
bp = Blueprint("ops", __name__)
csrf.exempt(bp)

CHECK_TIMEOUT_SECONDS = 2.0
GATEWAY_CHECK_SECONDS = 15.0
_gateway_checked: dict[str, tuple[float, str | None]] = {}
_gateway_lock = threading.Lock()
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="readyz-gateway")


@bp.get("/healthz")
def healthz():
    """The process is up and answers (nothing else is asked)."""
    return jsonify(status="ok")


def _check_database() -> str | None:
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except Exception as error:  # any failure means not ready; say which kind, never the URL
        db.session.rollback()
        return type(error).__name__
    return None


def _check_redis() -> str | None:
    try:
        client = Redis.from_url(current_app.config["REDIS_URL"], socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
                                socket_timeout=CHECK_TIMEOUT_SECONDS)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as error:
        return type(error).__name__
    return None


def _check_gateway() -> str | None:
    """The gateway's ping, cached per process; a ping slower than the timeout counts as a failure."""
    instance = gateway()
    key = instance.api_base
    with _gateway_lock:
        checked = _gateway_checked.get(key)
        if checked and time.monotonic() - checked[0] < GATEWAY_CHECK_SECONDS:
            return checked[1]
    try:
        _pool.submit(instance.ping).result(timeout=CHECK_TIMEOUT_SECONDS * 2)
        outcome = None
    except FutureTimeout:
        outcome = "Timeout"
    except Exception as error:
        outcome = type(error).__name__
    with _gateway_lock:
        _gateway_checked[key] = (time.monotonic(), outcome)
    return outcome


@bp.get("/readyz")
def readyz():
    """200 when the database, Redis and the gateway answer; 503 with what failed otherwise."""
    checks = {"database": _check_database(), "redis": _check_redis(), "gateway": _check_gateway()}
    failed = {name: error for name, error in checks.items() if error}
    body = {"status": "ready" if not failed else "unavailable",
            "checks": {name: ("ok" if error is None else "failed") for name, error in checks.items()}}
    if failed:
        body["failed"] = sorted(failed)
        body["errors"] = failed
        log.warning("not ready: %s", ", ".join(f"{name} ({error})" for name, error in sorted(failed.items())),
                    extra={"event": "readiness.failed", "failed": sorted(failed)})
    return jsonify(body), 503 if failed else 200


def _from_this_machine() -> bool:
    # Behind a proxy on this machine every request would look local: a forwarded one is not.
    if request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded"):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def _bearer_ok() -> bool:
    expected = current_app.config.get("METRICS_TOKEN") or ""
    given = request.headers.get("Authorization", "")
    if not expected or not given.startswith("Bearer "):
        return False
    return hmac.compare_digest(given.removeprefix("Bearer ").strip().encode(), expected.encode())


@bp.get("/metrics")
def prometheus_metrics():
    """Prometheus text format: counters of every process and the database's figures."""
    if not (_from_this_machine() or _bearer_ok()):
        abort(401 if current_app.config.get("METRICS_TOKEN") else 403)
    output = generate_latest(metrics.registry(lambda: Session(db.engine)))
    return Response(output, mimetype=CONTENT_TYPE_LATEST)

"""The Flask application: routing, and the pipeline every /v1 request goes through.

Pipeline: request id → stats → injected faults → auth → parameter decoding →
idempotency → handler inside one SQLite transaction → expansion → JSON.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from collections import Counter
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from flask import Flask, Response, current_app, request

from . import API_VERSION, clock
from .context import Ctx, Settings
from .errors import ApiError, AuthenticationFailed, IdempotencyError, InvalidRequest, StripeError
from .ids import new_id
from .params import Params, decode_pairs
from .resources import common, load_all, test_clocks
from .store import Store
from .webhooks import Dispatcher, ensure_command_line_endpoint

log = logging.getLogger("sandbox")

IDEMPOTENCY_TTL = 24 * 3600
SENSITIVE_CARD_KEYS = ("number", "cvc")


class Faults:
    """Failures injected through ``/_sandbox/fail`` into the next N /v1 requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.remaining = 0
        self.status = 500
        self.delay: float | None = None

    def arm(self, count: int, status: int = 500, delay: float | None = None) -> None:
        with self._lock:
            self.remaining, self.status, self.delay = count, status, delay

    def take(self) -> tuple[int, float | None] | None:
        with self._lock:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
            return self.status, self.delay


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_endpoint: Counter[str] = Counter()

    def count(self, key: str) -> None:
        with self._lock:
            self.by_endpoint[key] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"total": sum(self.by_endpoint.values()),
                    "by_endpoint": dict(sorted(self.by_endpoint.items()))}

    def clear(self) -> None:
        with self._lock:
            self.by_endpoint.clear()


class ClockWorker:
    """Runs test clock advances in the background, one at a time, as Stripe does after answering ``advancing``."""

    def __init__(self, box: "Sandbox") -> None:
        self.box = box
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, clock_id: str, base_url: str) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sandbox-clocks", daemon=True)
                self._thread.start()
        self._queue.put((clock_id, base_url))

    def _run(self) -> None:
        while True:
            clock_id, base_url = self._queue.get()
            try:
                with self.box.unit_of_work(base_url, clock_id=clock_id) as ctx:
                    test_clocks.finish_advance(ctx, clock_id)
            except Exception:  # noqa: BLE001 - Stripe marks the clock internal_failure
                log.exception("advancing test clock %s failed", clock_id)
                with self.box.store.write() as db:
                    failed = clock.load_clock(db, clock_id)
                    if failed is not None:
                        failed.update(status="internal_failure", status_details={})
                        db.save(failed)


class Sandbox:
    """Everything the running server holds: settings, storage, webhook delivery, counters."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.db_path)
        self.faults = Faults()
        self.stats = Stats()
        self.dispatcher = Dispatcher(self.store, settings)
        self.clocks = ClockWorker(self)
        self._prepare()

    def _prepare(self) -> None:
        with self.store.write() as db:
            ensure_command_line_endpoint(db, self.settings)

    @contextmanager
    def unit_of_work(self, base_url: str, request_id: str | None = None,
                     idempotency_key: str | None = None, subjects: Sequence[str | None] = (),
                     clock_id: str | None = None) -> Iterator[Ctx]:
        """One write transaction with its context; webhooks are woken and clocks advanced after commit.

        The context's ``now`` is the time of the test clock the ``subjects`` (ids the request names)
        live on, or wall time. Work due in wall time is caught up first, as Stripe does it unasked.
        """
        with self.store.write() as db:
            background = Ctx(db=db, now=clock.wall_now(), base_url=base_url)
            test_clocks.catch_up(background)
            ctx = Ctx(db=db, now=clock.time_for(db, subjects, clock_id), base_url=base_url,
                      request_id=request_id, idempotency_key=idempotency_key)
            ctx.emitted.extend(background.emitted)
            yield ctx
        if ctx.emitted:
            self.dispatcher.notify()
        for advancing in ctx.clocks_to_advance:
            self.clocks.submit(advancing, base_url)

    @contextmanager
    def reading(self, base_url: str, request_id: str | None = None,
                subjects: Sequence[str | None] = (), clock_id: str | None = None) -> Iterator[Ctx]:
        with self.store.read() as db:
            yield Ctx(db=db, now=clock.time_for(db, subjects, clock_id), base_url=base_url, request_id=request_id)

    def reset(self) -> None:
        self.dispatcher.reset()
        self.store.wipe()
        self._prepare()
        self.stats.clear()
        self.faults.arm(0)


def sandbox() -> Sandbox:
    return current_app.extensions["sandbox"]


def dump(body: Any) -> str:
    """Compact JSON: Stripe indents its answers, but ``indent`` bypasses Python's C encoder, and
    on a page of 100 objects that was most of the sandbox's time. The SDK parses either."""
    return json.dumps(body, separators=(",", ":"))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(dump(body), status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _digest(method: str, path: str, params: dict[str, Any]) -> str:
    """Fingerprint of a request for idempotency: card numbers and CVCs never enter it raw."""
    def scrub(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: ("<redacted:" + hashlib.sha256(str(v).encode()).hexdigest()[:12] + ">"
                        if k in SENSITIVE_CARD_KEYS and isinstance(v, str) else scrub(v))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [scrub(v) for v in node]
        return node
    canonical = json.dumps([method, path, scrub(params)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _authenticate() -> None:
    header = request.headers.get("Authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not key and request.authorization and request.authorization.type == "basic":
        key = request.authorization.username or ""  # curl -u sk_test_...:
    if not key:
        raise AuthenticationFailed(
            "You did not provide an API key. You need to provide your API key in the Authorization "
            "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
    if key.startswith("sk_live_"):
        raise AuthenticationFailed("The sandbox refuses live mode keys: use a key starting with sk_test_.")
    if not key.startswith("sk_test_"):
        masked = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else "***"
        raise AuthenticationFailed(f"Invalid API Key provided: {masked}")


def _request_params() -> dict[str, Any]:
    pairs = list(request.args.items(multi=True))
    if request.method == "POST":
        pairs += list(request.form.items(multi=True))
    return decode_pairs(pairs)


def _handle_api(route: common.Route, path_args: dict[str, str]) -> Response:
    box = sandbox()
    request_id = new_id("req")
    box.stats.count(f"{route.method} /v1{route.rule}")
    headers = {"Request-Id": request_id, "Stripe-Version": request.headers.get("Stripe-Version", API_VERSION)}
    try:
        fault = box.faults.take()
        if fault is not None:
            status, delay = fault
            if delay is not None:
                time.sleep(delay)
            else:
                raise ApiError("An unknown error occurred (injected by the sandbox's /_sandbox/fail).",
                               status=status)
        _authenticate()
        params = Params(_request_params())
        key = request.headers.get("Idempotency-Key") if route.method == "POST" else None
        if key is not None and len(key) > 255:
            raise InvalidRequest("Idempotency-Key must be at most 255 characters long.")
        base_url = request.host_url
        subjects = _subjects(params, path_args)
        if not route.writes:
            with box.reading(base_url, request_id, subjects=subjects) as ctx:
                body = _run(ctx, route, params, path_args)
            return json_response(body, 200, headers)
        digest = _digest(request.method, request.path, params.data)
        try:
            with box.unit_of_work(base_url, request_id, key, subjects=subjects) as ctx:
                # Checked inside the write lock, so a concurrent retry with the same key
                # waits for the first request and then replays its answer.
                replay = _idempotent_replay(ctx, key, digest, headers) if key else None
                if replay is not None:
                    return replay
                try:
                    body = _run(ctx, route, params, path_args)
                    status = 200
                except StripeError as exc:
                    if not exc.keep_changes:
                        raise
                    body, status = exc.to_json(), exc.status
                if key:
                    _remember(ctx, key, digest, status, body, request_id)
        except StripeError as exc:
            # Rolled back; Stripe still replays a 4xx answer for the same key.
            if key and exc.status < 500 and not isinstance(exc, IdempotencyError):
                with box.unit_of_work(base_url) as ctx:
                    _remember(ctx, key, digest, exc.status, exc.to_json(), request_id)
            raise
        return json_response(body, status, headers)
    except StripeError as exc:
        return json_response(exc.to_json(), exc.status, headers)
    except Exception:  # noqa: BLE001 - Stripe answers api_error, and so do we
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_response(ApiError("An unknown error occurred in the sandbox.").to_json(), 500, headers)


SUBJECT_PARAMS = ("test_clock", "customer", "subscription", "from_subscription", "invoice", "payment_intent",
                  "charge")


def _subjects(params: Params, path_args: dict[str, str]) -> list[str | None]:
    """Ids a request names, in the order that decides which test clock's time it runs at."""
    named = [params.raw(key) for key in SUBJECT_PARAMS]
    return [value for value in [*path_args.values(), *named] if isinstance(value, str)]


def _run(ctx: Ctx, route: common.Route, params: Params, path_args: dict[str, str]) -> Any:
    if route.params is not None:
        params.reject_unknown(route.params)
    body = route.handler(ctx, params, **path_args)
    paths = params.expand()
    if paths and isinstance(body, dict):
        body = common.expand(ctx, body, paths)
    return body


def _idempotent_replay(ctx: Ctx, key: str, digest: str, headers: dict[str, str]) -> Response | None:
    row = ctx.db.conn.execute(
        "SELECT method, path, digest, status, body, request_id, created FROM idempotency WHERE key = ?",
        (key,)).fetchone()
    if row is None or row[6] < clock.wall_now() - IDEMPOTENCY_TTL:  # kept 24 h of real time
        return None
    method, path, stored_digest, status, body, original_request, _ = row
    if method != request.method or path != request.path:
        raise IdempotencyError(
            f"Keys for idempotent requests can only be used for the same endpoint they were first used for "
            f"('{method} {path}' vs '{request.method} {request.path}'). Try using a key other than "
            f"'{key}' if you meant to execute a different request.")
    if stored_digest != digest:
        raise IdempotencyError(
            "Keys for idempotent requests can only be used with the same parameters they were first "
            f"used with. Try using a key other than '{key}' if you meant to execute a different request.")
    replay_headers = dict(headers, **{"Idempotent-Replayed": "true", "Original-Request": original_request})
    return Response(body, status=status, mimetype="application/json", headers=replay_headers)


def _remember(ctx: Ctx, key: str, digest: str, status: int, body: Any, request_id: str) -> None:
    ctx.db.conn.execute(
        "INSERT INTO idempotency (key, method, path, digest, status, body, request_id, created)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET method=excluded.method,"
        " path=excluded.path, digest=excluded.digest, status=excluded.status, body=excluded.body,"
        " request_id=excluded.request_id, created=excluded.created",
        (key, request.method, request.path, digest, status, dump(body), request_id, clock.wall_now()))


def _view_for(route: common.Route):
    def view(**path_args: str) -> Response:
        return _handle_api(route, path_args)
    view.__name__ = f"api_{route.method.lower()}_{route.rule}"
    view.__doc__ = f"{route.method} /v1{route.rule}"
    return view


def create_app(db_path: str, webhook_url: str | None = None, webhook_secret: str | None = None, *,
               webhook_retry_base: float = 1.0, webhook_max_attempts: int = 8,
               webhook_timeout: float = 10.0, deliver_webhooks: bool = True) -> Flask:
    """Build the sandbox app on the SQLite file ``db_path`` (created if missing)."""
    settings = Settings(db_path=db_path, webhook_url=webhook_url, webhook_secret=webhook_secret,
                        webhook_retry_base=webhook_retry_base, webhook_max_attempts=webhook_max_attempts,
                        webhook_timeout=webhook_timeout)
    app = Flask(__name__)
    box = Sandbox(settings)
    app.extensions["sandbox"] = box

    load_all()
    for route in common.ROUTES:
        app.add_url_rule("/v1" + route.rule, endpoint=f"{route.method} {route.rule}",
                         view_func=_view_for(route), methods=[route.method])

    from .control import control
    from .pages import pages

    app.register_blueprint(control)
    app.register_blueprint(pages)

    @app.errorhandler(404)
    @app.errorhandler(405)
    def unknown_url(error: Exception) -> Response:
        if request.path.startswith("/v1"):
            message = (f"Unrecognized request URL ({request.method}: {request.path}). Please see "
                       "https://stripe.com/docs or we can help at https://support.stripe.com/.")
            return json_response(InvalidRequest(message).to_json(), 404, {"Request-Id": new_id("req")})
        return Response("Not found", status=404, mimetype="text/plain")

    @app.after_request
    def request_id(response: Response) -> Response:
        response.headers.setdefault("Request-Id", new_id("req"))  # pages and control endpoints too
        return response

    if deliver_webhooks:
        box.dispatcher.start()
    return app

"""POST /webhooks/kernel/stripe, served as plain WSGI in front of Flask: verify, record, hand off, answer.

Stripe's deliveries are the portal's busiest request, and Flask's request cycle,
Flask-Limiter and building an RQ job cost several times the endpoint's own work
(figures in docs/benchmarks.md). So ``StripeWebhookEndpoint`` answers exactly this path
before Flask sees it, and ``receive`` does the whole job in one function, in a
fixed order:

1. size (``Content-Length``, then while reading): 413;
2. UTF-8 text, the signature on it, then the event's shape: 400;
3. rate limit per sending address (portal/webhooks/ratelimit.py): 429;
4. one INSERT into ``processed_webhooks`` (a duplicate fails it: 200, nothing more); 200.

A request refused at 1-3 writes nothing. An acknowledged event is always in
``processed_webhooks``, which is the workers' queue (jobs/webhooks.py): nothing
else needs handing over, so Redis being down never delays an event. With
``RQ_ASYNC`` off (tests) the event is applied at once, in-process, before the answer.

Everything else (including other methods and paths) goes to Flask unchanged. The
middleware sits inside ProxyFix when ``TRUSTED_PROXIES`` is set, so
``REMOTE_ADDR`` is the client's address.
"""
from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from typing import Callable, Iterable

from flask import Flask
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from billing import metrics
from billing.webhooks.events import Event, MalformedEvent
from billing.webhooks.signature import SignatureError, verify
from portal.errors import error_body
from portal.payments import EXTENSION as GATEWAY
from portal.webhooks import ratelimit
from portal.webhooks.apply import process_event

log = logging.getLogger(__name__)

PATH = "/webhooks/kernel/stripe"
MAX_BODY_BYTES = 256 * 1024  # Stripe's events are a few KiB; a larger body is not one of them
# Per sending address. Stripe delivers from a dozen addresses and retries anything it is
# refused with a 429, so this stops a flood without ever losing an event (docs/webhooks.md).
DEFAULT_RATE_LIMIT = "6000 per minute"
REJECTED_KEY = "webhooks:rejected:{}"
DUPLICATES_KEY = "webhooks:duplicates"
INBOX = "webhook_inbox"  # app.extensions key of the billing.webhooks.inbox.Inbox

_ACK = b'{"received": true}'
_JSON = ("Content-Type", "application/json")
_NOSNIFF = ("X-Content-Type-Options", "nosniff")
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
_local = threading.local()  # a thread's Redis clients, by URL
# A dropped connection (Redis restarted) is retried once at once; a timeout is not: it would only double the wait.
_CLIENT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 2,
                   "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))}


class Answer:
    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, body: bytes, headers: tuple[tuple[str, str], ...] = ()):
        self.status, self.body, self.headers = status, body, headers


ACK = Answer(200, _ACK)


def _redis(url: str) -> Redis:
    """This thread's client for this path: short timeouts, one retry after a dropped connection.

    One connection per thread, held (``single_connection_client``), rather than a shared pool: the
    pool's checkout and checkin cost client CPU on every command, twice per delivery (docs/benchmarks.md).
    """
    clients = getattr(_local, "clients", None)
    if clients is None:
        clients = _local.clients = {}
    client = clients.get(url)
    if client is None:
        try:
            client = clients[url] = Redis.from_url(url, single_connection_client=True, **_CLIENT_OPTIONS)
        except RedisError:
            # Redis is away (this client connects at once): one that connects on use, so that each use
            # fails, and is dealt with, where it happens; the next request tries again.
            return Redis.from_url(url, **_CLIENT_OPTIONS)
    return client


def rate_limit(app: Flask) -> str:
    return app.config.get("WEBHOOK_RATE_LIMIT") or DEFAULT_RATE_LIMIT


def _error(status: int, message: str, reason: str | None = None, headers: tuple = ()) -> Answer:
    return Answer(status, json.dumps(error_body(status, message, reason)).encode(), headers)


def _count(connection: Redis, key: str) -> None:
    try:
        connection.incr(key)
    except RedisError:  # a counter is never a reason to answer differently
        log.warning("could not count %s", key)


def _reject(connection: Redis, reason: str, message: str, status: int = 400, headers: tuple = ()) -> Answer:
    _count(connection, REJECTED_KEY.format(reason))
    metrics.webhook_received(None, reason)
    log.warning("webhook refused (%s): %s", reason, message,
                extra={"event": "webhook.refused", "reason": reason, "http_status": status})
    return _error(status, message, reason, headers)


def _read_body(environ: dict, limit: int) -> bytes | None:
    """The request body, or None when it is larger than ``limit`` (a declared length is checked before reading)."""
    stream = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH")
    if declared:
        try:
            length = int(declared)
        except ValueError:
            length = 0  # an unreadable length: nothing to read, so no signature will match
        if length > limit:
            return None
        return stream.read(length) if length > 0 else b""
    if environ.get("wsgi.input_terminated"):  # chunked: the server marks the end of the body
        body = stream.read(limit + 1)
        return None if len(body) > limit else body
    return b""


def receive(app: Flask, environ: dict) -> Answer:
    """Receive one Stripe event: verify it, count it against the limit, record it once, hand it off, acknowledge."""
    config = app.config
    connection = _redis(config["REDIS_URL"])
    limit = config.get("WEBHOOK_MAX_BYTES", MAX_BODY_BYTES)
    raw = _read_body(environ, limit)
    if raw is None:
        return _reject(connection, "too_large", f"the body is larger than {limit} bytes", 413)

    try:
        try:  # Stripe signs the body's text (its SDK checks it so): bytes that are no text are no event
            payload = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedEvent("malformed_json", "the body is not valid JSON") from None
        verify(payload, environ.get("HTTP_STRIPE_SIGNATURE"), config["STRIPE_KERNEL_WEBHOOK_SECRETS"])
        event = Event.parse(payload)
    except (SignatureError, MalformedEvent) as error:
        return _reject(connection, error.reason, str(error))

    # Only signed events count against the limit: junk from a shared address never eats Stripe's allowance.
    if config.get("RATELIMIT_ENABLED", True):
        refusal = ratelimit.check(connection, environ.get("REMOTE_ADDR") or "127.0.0.1", rate_limit(app))
        if refusal is not None:
            return _reject(connection, "rate_limited", f"more than {refusal.limit} from this address", 429,
                           (("Retry-After", str(refusal.retry_after)),))

    # An event of the other mode (a test event reaching the live portal) is kept for the record only.
    other_mode = event.livemode != app.extensions[GATEWAY].livemode
    recorded = app.extensions[INBOX].record(event, payload, ignored=other_mode)
    outcome = "duplicate" if not recorded else "other_mode" if other_mode else "recorded"
    metrics.webhook_received(event.type, outcome)
    log.info("webhook received: %s %s (%s)", event.type, event.id, outcome,
             extra={"event": "webhook.received", "type": event.type, "event_id": event.id, "outcome": outcome})
    if not recorded:
        _count(connection, DUPLICATES_KEY)
        return ACK  # already recorded: processed once, by the first copy's job
    if not other_mode and not config["RQ_ASYNC"]:
        _apply_now(app, event.id)
    return ACK


def _apply_now(app: Flask, event_id: str) -> None:
    """Tests (``RQ_ASYNC`` off): apply the event before answering, exactly as a worker would."""
    with app.app_context():
        process_event(event_id)


class StripeWebhookEndpoint:
    """WSGI middleware: answers ``/webhooks/kernel/stripe`` itself and passes every other request to Flask."""

    def __init__(self, app: Flask, wsgi_app: Callable):
        self.app = app
        self.wsgi_app = wsgi_app
        self._extra_headers: tuple[tuple[str, str], ...] = (_JSON, _NOSNIFF)
        if app.config.get("SESSION_COOKIE_SECURE"):  # production: as the portal's other answers (portal/security.py)
            self._extra_headers += (("Strict-Transport-Security", "max-age=31536000"),)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.wsgi_app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "POST":
            answer = _error(405, "The method is not allowed for the requested URL.", headers=(("Allow", "POST"),))
        else:
            try:
                answer = receive(self.app, environ)
            except Exception:
                log.exception("unhandled error on POST %s", PATH)
                answer = _error(500, "Internal error")
        headers = [*self._extra_headers, ("Content-Length", str(len(answer.body))), *answer.headers]
        start_response(_STATUS_LINES[answer.status], headers)
        return [answer.body]

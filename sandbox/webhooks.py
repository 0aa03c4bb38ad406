"""Webhook delivery: signed POSTs of each event to each endpoint, retried with backoff.

Emitting an event (inside the request's transaction) queues one row per
matching endpoint; a thread per endpoint then delivers due rows in event order.
A failed attempt (non-2xx or connection error) is retried after
``retry_base * 2**(attempt-1)`` seconds, up to ``max_attempts`` attempts, and
does not hold back later events (Stripe does not promise ordering either).
Every attempt is recorded in ``webhook_attempts`` (see ``/_sandbox/deliveries``).
Signatures use wall-clock time, never sandbox time, so tolerance checks work.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from .context import Settings
from .objects.misc import webhook_endpoint
from .store import Db, Store

log = logging.getLogger("sandbox.webhooks")

# Receivers are local test servers: never route deliveries through an environment proxy.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24).replace("-", "a").replace("_", "b")


def sign(secret: str, body: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def command_line_endpoint_id(url: str) -> str:
    return "we_cli" + hashlib.sha256(url.encode()).hexdigest()[:18]


def ensure_command_line_endpoint(db: Db, settings: Settings) -> None:
    """The endpoint given with ``--webhook-url`` lives in the store like any other (and survives reset)."""
    if not settings.webhook_url:
        return
    if not settings.webhook_secret:
        settings.webhook_secret = new_secret()
        # Never log a secret; whoever needs to verify these deliveries should choose it.
        log.warning("no webhook secret given for %s: generated one that nobody can verify with; "
                    "pass --webhook-secret", settings.webhook_url)
    endpoint_id = command_line_endpoint_id(settings.webhook_url)
    existing = db.get(endpoint_id)
    endpoint = existing or webhook_endpoint(
        int(time.time()), endpoint_id=endpoint_id, url=settings.webhook_url, enabled_events=["*"],
        description="Given on the sandbox command line", metadata={})
    db.save(endpoint, extra={"secret": settings.webhook_secret, "source": "command_line"})


class Dispatcher:
    """Starts one delivery thread per endpoint that has pending deliveries."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._cond = threading.Condition()
        self._workers: dict[str, threading.Thread] = {}
        self._generation = 0
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhook-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def reset(self) -> None:
        """Forget in-flight work: attempts finishing after a reset are not recorded."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
            try:
                with self.store.read() as db:
                    endpoint_ids = [row[0] for row in db.conn.execute(
                        "SELECT DISTINCT endpoint_id FROM webhook_queue WHERE state = 'pending'")]
                for endpoint_id in endpoint_ids:
                    worker = self._workers.get(endpoint_id)
                    if worker is None or not worker.is_alive():
                        worker = threading.Thread(target=self._deliver_loop, args=(endpoint_id,),
                                                  name=f"webhook-{endpoint_id}", daemon=True)
                        self._workers[endpoint_id] = worker
                        worker.start()
            except Exception:  # noqa: BLE001 - delivery must outlive any single failure
                log.exception("webhook dispatcher failed; retrying")
            with self._cond:
                if not self._stopped:
                    self._cond.wait(timeout=0.5)

    def _next_row(self, endpoint_id: str) -> tuple[tuple[Any, ...] | None, float | None]:
        """The due row with the oldest event, or the time the next one falls due."""
        now = time.time()
        with self.store.read() as db:
            row = db.conn.execute(
                "SELECT id, event_id, attempts FROM webhook_queue WHERE endpoint_id = ? AND state = 'pending'"
                " AND next_at <= ? ORDER BY event_seq LIMIT 1", (endpoint_id, now)).fetchone()
            if row:
                return row, None
            upcoming = db.conn.execute(
                "SELECT MIN(next_at) FROM webhook_queue WHERE endpoint_id = ? AND state = 'pending'",
                (endpoint_id,)).fetchone()[0]
        return None, upcoming

    def _deliver_loop(self, endpoint_id: str) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                generation = self._generation
            try:
                row, upcoming = self._next_row(endpoint_id)
                if row is None:
                    if upcoming is None:
                        return  # nothing pending: the dispatcher starts a new thread when needed
                    with self._cond:
                        self._cond.wait(timeout=max(0.01, min(upcoming - time.time(), 1.0)))
                    continue
                self._deliver(endpoint_id, row, generation)
            except Exception:  # noqa: BLE001
                log.exception("webhook delivery to %s failed unexpectedly", endpoint_id)
                time.sleep(0.5)

    def _deliver(self, endpoint_id: str, row: tuple[Any, ...], generation: int) -> None:
        queue_id, event_id, attempts = row
        with self.store.read() as db:
            endpoint, extra = db.get_with_extra(endpoint_id)
            event_row = db.conn.execute("SELECT type, data FROM events WHERE id = ?", (event_id,)).fetchone()
        if endpoint is None or event_row is None or endpoint.get("status") != "enabled":
            with self.store.write() as db:
                db.conn.execute("UPDATE webhook_queue SET state = 'dropped' WHERE id = ?", (queue_id,))
            return
        event_type, body = event_row
        attempt = attempts + 1
        started = time.time()
        status, error = self._post(endpoint["url"], body, extra.get("secret") or "")
        duration_ms = int((time.time() - started) * 1000)
        ok = status is not None and 200 <= status < 300
        if ok:
            outcome, state, next_at = "delivered", "delivered", 0.0
        elif attempt >= self.settings.webhook_max_attempts:
            outcome, state, next_at = "gave_up", "failed", 0.0
        else:
            outcome, state = "retrying", "pending"
            next_at = time.time() + self.settings.webhook_retry_base * (2 ** (attempt - 1))
        with self._cond:
            if generation != self._generation:
                return  # a reset happened while we were posting
        with self.store.write() as db:
            db.conn.execute("UPDATE webhook_queue SET attempts = ?, state = ?, next_at = ? WHERE id = ?",
                            (attempt, state, next_at, queue_id))
            db.conn.execute(
                "INSERT INTO webhook_attempts (event_id, event_type, endpoint_id, url, attempt, status, error,"
                " outcome, at, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (event_id, event_type, endpoint_id, endpoint["url"], attempt, status, error, outcome,
                 started, duration_ms))
        if not ok:
            log.info("webhook %s %s to %s: attempt %d %s (%s)", event_type, event_id, endpoint["url"],
                     attempt, outcome, error or status)

    def _post(self, url: str, body: str, secret: str) -> tuple[int | None, str | None]:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": sign(secret, body, int(time.time())),
        }
        request = urllib.request.Request(url, data=body.encode("utf-8"), headers=headers, method="POST")
        try:
            with _opener.open(request, timeout=self.settings.webhook_timeout) as response:
                response.read(65536)
                return response.status, None
        except urllib.error.HTTPError as exc:
            return exc.code, f"HTTP {exc.code}"
        except Exception as exc:  # noqa: BLE001 - any failure to deliver is a failed attempt
            return None, f"{type(exc).__name__}: {exc}"

"""The event applier: applies recorded Stripe events as they arrive, in the worker process itself.

The endpoint records each event in ``processed_webhooks`` and answers; that table is
the queue. ``Applier`` loops: one short transaction applies the due events
(``billing.webhooks.processing.apply_pending``), then the Stripe calls some of them
asked for are made with no transaction open (a few at once, on threads), then again.
No RQ job per event, no fork per event and no Redis on this path: a Redis outage
does not delay an event, a worker killed mid-batch leaves its events due for the
next pass of any worker, and a failed event's retry time is a column, not a job.

Applying one named event at once, where no worker runs, is ``portal.webhooks.apply.process_event``.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from flask import Flask

from billing import clock
from billing.webhooks import processing
from billing.webhooks.correlation import correlated
from billing.webhooks.inbox import Turn
from billing.webhooks.prefetch import Answers
from portal.extensions import db
from portal.payments import checked_job, gateway

log = logging.getLogger(__name__)

IDLE = 0.05  # seconds between looks at an empty queue: the latency floor when events trickle in
# A transaction's length on SQLite, whose single write lock the webhook endpoint waits for: the
# endpoint's answer must stay within a few milliseconds. PostgreSQL locks rows, not the database.
# On PostgreSQL a batch's row locks only stop writers of the same rows (a checkout redirect, another applier),
# so a batch may last longer: the claim and the commit are then shared by many events.
BUDGET = {"sqlite": 0.003, "postgresql": 0.2}
BATCH = {"sqlite": 20, "postgresql": 100}  # events claimed at once (the claim itself holds SQLite's lock)
FETCHERS = 8  # Stripe calls made at once between two transactions (network waits, not CPU)
FORGET_AFTER = 120.0  # seconds: answers gathered for an event that another worker applied meanwhile


class Applier:
    """Applies due events until told to stop; several may run, in this process or on other machines."""

    def __init__(self, app: Flask, *, idle: float = IDLE):
        self.app = app
        self.idle = idle
        self.answers: dict[str, Answers] = {}
        self._born: dict[str, float] = {}
        with app.app_context():
            dialect = db.engine.dialect.name
            # SQLite: deliveries waiting for the write lock go first (billing/webhooks/inbox.py, Turn).
            self._turn = Turn.for_engine(db.engine)
        self.budget = float(app.config.get("WEBHOOK_BATCH_SECONDS") or BUDGET.get(dialect, 0.05))
        self.batch = int(app.config.get("WEBHOOK_BATCH_SIZE") or BATCH.get(dialect, 100))
        self.retry_intervals = tuple(app.config.get("WEBHOOK_RETRY_INTERVALS", processing.RETRY_INTERVALS))
        self.smtp_configured = bool(app.config.get("SMTP_URL"))
        self._pool = ThreadPoolExecutor(FETCHERS, thread_name_prefix="stripe-fetch")

    def step(self) -> int:
        """One transaction's worth of events, then the Stripe calls they wait for; returns events settled + waiting."""
        clock.now()  # a clock that follows the sandbox re-reads it here, not inside the transaction
        if self._turn is not None:
            self._turn.let_waiting_in()
        with self.app.app_context(), checked_job("webhook applier"):
            try:
                done = processing.apply_pending(db.session, gateway(), self.answers, limit=self.batch, budget=self.budget,
                                                smtp_configured=self.smtp_configured,
                                                retry_intervals=self.retry_intervals,
                                                someone_waits=self._turn.someone_waits if self._turn else None)
                stripe = gateway()
            finally:
                db.session.remove()
        for event_id, _status in done.settled:
            self._born.pop(event_id, None)
        if done.needs:
            now = time.monotonic()
            for event_id in done.needs:
                self._born.setdefault(event_id, now)

            def fetch(item):
                event_id, call = item
                with correlated(event_id):
                    self.answers[event_id].fetch(stripe, call)

            list(self._pool.map(fetch, [(event_id, call) for event_id, calls in done.needs.items() for call in calls]))
            self._forget(now)
        return len(done.settled) + len(done.needs)

    def _forget(self, now: float) -> None:
        for event_id, born in list(self._born.items()):
            if now - born > FORGET_AFTER:
                self._born.pop(event_id, None)
                self.answers.pop(event_id, None)

    def drain(self, timeout: float = 60.0) -> int:
        """Apply until nothing is due (tests, the CLI); returns how many events were settled or retried."""
        deadline = time.monotonic() + timeout
        total = 0
        while (moved := self.step()) and time.monotonic() < deadline:
            total += moved
        return total

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Apply events as they come until ``should_stop()``; a database outage only pauses it."""
        log.info("applying Stripe events from processed_webhooks (transactions of at most %.0f ms)",
                 self.budget * 1000)
        pause = 0.5
        while not should_stop():
            try:
                if not self.step():
                    time.sleep(self.idle)
                pause = 0.5
            except Exception:  # noqa: BLE001 - the database is away or restarting: wait, then go on
                log.exception("could not apply events; trying again in %.1f s", pause)
                time.sleep(pause)
                pause = min(pause * 2, 10.0)
        self._pool.shutdown(wait=True)
        log.info("event applier stopped")

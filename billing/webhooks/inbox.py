"""Recording a verified Stripe event, exactly once, in ``processed_webhooks``.

This runs on the webhook endpoint's hot path, so it is one INSERT in its own
short transaction and nothing else. On PostgreSQL it is a single autocommit
statement sent straight to the driver through an engine of its own (no pool
pre-ping, no ORM, no per-statement compilation): one round trip. The unique
event id does the deduplication: a second copy, even one racing the first on
another connection, fails the INSERT with an IntegrityError and is reported as a
duplicate.

On SQLite the INSERT needs the database's one write lock, which the applier's
batches take too, back to back while a backlog drains. A delivery that waits
says so (``Turn``), and the applier lets it in before its next batch.
"""
from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from typing import Iterator, Optional

from sqlalchemy import create_engine, insert
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from billing.models import ProcessedWebhook, WebhookStatus
from billing.webhooks.events import Event

_table = ProcessedWebhook.__table__
_INSERT = insert(_table)
_PG_INSERT = (
    "INSERT INTO processed_webhooks (event_id, type, object_id, created, livemode, payload, status, attempts,"
    " received_at, processed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s, %s)"
)
# SQLite's busy handler sleeps 1, 2, 5, 10, 15, 20... ms between tries: a delivery that keeps missing
# the write lock between a worker's back-to-back batches waited 53 ms (the acknowledgement's p99 on
# SQLite). The endpoint asks for the lock itself every half millisecond, as long as the busy timeout.
_LOCK_POLL = 0.0005
_LOCK_WAIT = 20.0


# How long the applier holds back a batch for waiting deliveries, at most: under a flood of deliveries it
# still applies a batch at least this often.
_LET_IN_AT_MOST = 0.02
_LET_IN_POLL = 0.0002


class Turn:
    """SQLite's write lock, taken in turn: deliveries waiting for it go before the applier's next batch.

    SQLite grants its write lock to whoever asks first after a commit, and the applier, going
    straight from one batch to the next, asks first nearly every time: a delivery polling for
    the lock missed batch after batch (acknowledgement p99 11-17 ms with a backlog draining).
    So a delivery holds a shared ``flock`` on ``<database>-waiting`` while it waits for the
    write lock and writes; the applier ends its batch early (commits) when it sees one
    between two events, and before its next batch waits until nobody holds it (at most
    ``_LET_IN_AT_MOST``: a flood of deliveries cannot stop the applier). A delivery then
    waits for one event, not for a batch. The kernel drops the lock when the file is
    closed, also when a process dies holding it.
    """

    def __init__(self, path: str):
        self.path = path
        self._fd: Optional[int] = None

    @classmethod
    def for_engine(cls, engine: Engine) -> Optional["Turn"]:
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        if not database or database == ":memory:" or database.startswith("file:"):
            return None  # PostgreSQL locks rows; an in-memory SQLite has one connection
        return cls(f"{database}-waiting")

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Held by a delivery from before it asks for the write lock until it committed."""
        fd = self._open()  # one per delivery: flock belongs to the open file, shared by a process's threads
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def someone_waits(self) -> bool:
        """Whether a delivery waits for the write lock now (the applier, between two events of a batch)."""
        if self._fd is None:
            self._fd = self._open()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        return False

    def let_waiting_in(self, at_most: Optional[float] = None) -> bool:
        """The applier, before a batch: returns once no delivery waits (True), or after ``at_most`` (False)."""
        deadline = time.monotonic() + (_LET_IN_AT_MOST if at_most is None else at_most)
        while self.someone_waits():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_LET_IN_POLL)
        return True


class Inbox:
    """Writes received events; build one per process with ``Inbox.for_engine(the app's engine)``."""

    def __init__(self, engine: Engine, fast_engine: Engine | None = None):
        self.engine = engine
        self._fast = fast_engine
        self._turn = Turn.for_engine(engine)
        if fast_engine is not None:
            self._driver_errors = fast_engine.dialect.dbapi.errors  # psycopg.errors

    @classmethod
    def for_engine(cls, engine: Engine) -> "Inbox":
        if engine.dialect.name != "postgresql":
            return cls(engine)  # SQLite keeps the app's engine and its WAL/IMMEDIATE settings
        # A dead pooled connection (a database restart) fails one insert, which is retried once below;
        # pre-pinging every checkout instead would cost a round trip on each delivery.
        # In autocommit there is no transaction to end when a connection goes back to the pool, so the
        # pool's reset (a rollback call per delivery; its cost is in docs/benchmarks.md) is skipped.
        fast = create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False,
                             pool_reset_on_return=None, pool_size=engine.pool.size(), max_overflow=10)
        # Its connections live and die with the app's engine (tests dispose it between databases).
        sa_event.listen(engine, "engine_disposed", lambda _engine: fast.dispose())
        return cls(engine, fast)

    def record(self, event: Event, payload: str, *, ignored: bool = False) -> bool:
        """Store ``event`` as received (or ignored); False when it was already recorded (a duplicate)."""
        status = WebhookStatus.IGNORED if ignored else WebhookStatus.RECEIVED
        # Wall-clock time of receipt (not the sandbox's test clock): an operational fact.
        now = datetime.now(timezone.utc)
        try:
            if self._fast is not None:
                self._insert_fast(event, payload, status, now)
            else:
                self._insert_sqlite({
                    "event_id": event.id, "type": event.type, "object_id": event.object_id,
                    "created": event.created, "livemode": event.livemode, "payload": payload, "status": status,
                    "attempts": 0, "received_at": now, "processed_at": now if ignored else None})
        except IntegrityError:
            return False
        return True

    def _insert_sqlite(self, values: dict) -> None:
        with self._turn.waiting() if self._turn is not None else nullcontext(), self.engine.connect() as connection:
            driver = connection.connection.driver_connection
            driver.execute("PRAGMA busy_timeout=0")  # a busy lock answers at once: the loop below waits
            try:
                deadline = time.monotonic() + _LOCK_WAIT
                while True:
                    try:
                        with connection.begin():  # BEGIN IMMEDIATE (billing/db.py): the write lock, or busy
                            connection.execute(_INSERT, values)
                        return
                    except OperationalError as error:
                        if "locked" not in str(error.orig) or time.monotonic() > deadline:
                            raise
                        time.sleep(_LOCK_POLL)
            finally:
                driver.execute("PRAGMA busy_timeout=20000")

    def _insert_fast(self, event: Event, payload: str, status: WebhookStatus, now: datetime) -> None:
        values = (event.id, event.type, event.object_id, event.created, event.livemode, payload, status.value, now,
                  now if status == WebhookStatus.IGNORED else None)
        for attempt in (1, 2):
            # The driver's connection straight from the pool: SQLAlchemy's statement machinery
            # costs more CPU than the INSERT itself on this path.
            connection = self._fast.raw_connection()
            try:
                with connection.cursor() as cursor:
                    cursor.execute(_PG_INSERT, values)
                return
            except self._driver_errors.UniqueViolation as error:
                raise IntegrityError(_PG_INSERT, values, error) from error
            except self._driver_errors.OperationalError as error:
                connection.invalidate(error)
                if attempt == 2:
                    raise DBAPIError(_PG_INSERT, values, error) from error
            finally:
                connection.close()  # back to the pool (or discarded when invalidated)

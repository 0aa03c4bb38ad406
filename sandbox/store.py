"""SQLite storage: every Stripe object is one row holding its JSON body.

A few columns are lifted out of the JSON (customer, subscription, status, ...)
only so list filters and the clock can use indexes instead of scanning.
Writes are serialized by one process-wide lock (the sandbox is one process);
reads use pooled connections and, thanks to WAL, never wait for a writer.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    created INTEGER NOT NULL,
    customer TEXT,
    subscription TEXT,
    status TEXT,
    parent TEXT,
    ref TEXT,
    due_at INTEGER,
    data TEXT NOT NULL,
    extra TEXT,
    clock TEXT
);
CREATE INDEX IF NOT EXISTS objects_by_type ON objects(type, created, id);
CREATE INDEX IF NOT EXISTS objects_by_customer ON objects(type, customer, created, id);
CREATE INDEX IF NOT EXISTS objects_by_subscription ON objects(type, subscription, created, id);
CREATE INDEX IF NOT EXISTS objects_by_status ON objects(type, status, created, id);
CREATE INDEX IF NOT EXISTS objects_by_parent ON objects(type, parent, created, id);
CREATE INDEX IF NOT EXISTS objects_by_ref ON objects(type, ref, created, id);
CREATE INDEX IF NOT EXISTS objects_due ON objects(clock, due_at) WHERE due_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    created INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_created ON events(created, id);
CREATE INDEX IF NOT EXISTS events_by_type ON events(type, created, id);

CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    digest TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    request_id TEXT NOT NULL,
    created INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS webhook_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
);
CREATE INDEX IF NOT EXISTS webhook_queue_pending ON webhook_queue(endpoint_id, state, event_seq);

CREATE TABLE IF NOT EXISTS webhook_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    url TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status INTEGER,
    error TEXT,
    outcome TEXT NOT NULL,
    at REAL NOT NULL,
    duration_ms INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

TABLES = ("objects", "events", "idempotency", "webhook_queue", "webhook_attempts", "meta")


def _dig(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _first_item_price(sub: dict[str, Any]) -> str | None:
    items = _dig(sub, "items", "data") or []
    return items[0]["price"]["id"] if items else None


def _active_flag(obj: dict[str, Any]) -> str:
    return "active" if obj.get("active") else "inactive"


# Which JSON value fills each indexed column, per object type.
Column = Callable[[dict[str, Any]], Any]
INDEXED: dict[str, dict[str, Column]] = {
    "invoice": {"subscription": lambda o: _dig(o, "parent", "subscription_details", "subscription")},
    "subscription": {"ref": _first_item_price},
    "subscription_item": {"subscription": lambda o: o.get("subscription")},
    "subscription_schedule": {"subscription": lambda o: o.get("subscription")},
    "invoiceitem": {"subscription": lambda o: _dig(o, "parent", "subscription_details", "subscription"),
                    "ref": lambda o: o.get("invoice")},
    "price": {"parent": lambda o: o.get("product"), "ref": lambda o: o.get("lookup_key"),
              "status": _active_flag},
    "product": {"status": _active_flag},
    "charge": {"parent": lambda o: o.get("payment_intent")},
    "refund": {"parent": lambda o: o.get("charge"), "ref": lambda o: o.get("payment_intent")},
    "invoice_payment": {"parent": lambda o: o.get("invoice"),
                        "ref": lambda o: _dig(o, "payment", "payment_intent")},
    "webhook_endpoint": {"customer": lambda o: None},
    "customer": {"customer": lambda o: None, "ref": lambda o: o.get("email"),
                 "status": lambda o: "deleted" if o.get("deleted") else "active"},
}

KEEP = object()


def _columns(obj: dict[str, Any]) -> dict[str, Any]:
    overrides = INDEXED.get(obj["object"], {})
    columns = {}
    for name in ("customer", "subscription", "status", "parent", "ref", "clock"):
        if name in overrides:
            value = overrides[name](obj)
        elif name == "clock":  # the test clock whose time the object's due work follows
            value = obj.get("test_clock")
        else:
            value = obj.get(name)
        columns[name] = value if isinstance(value, str) else None
    return columns


class Db:
    """One connection's view of the store; inside ``Store.write()`` it is a transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # -- objects ---------------------------------------------------------------------------
    def get(self, object_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT data FROM objects WHERE id = ?", (object_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def get_with_extra(self, object_id: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        row = self.conn.execute("SELECT data, extra FROM objects WHERE id = ?", (object_id,)).fetchone()
        if not row:
            return None, {}
        return json.loads(row[0]), json.loads(row[1] or "{}")

    def extra(self, object_id: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT extra FROM objects WHERE id = ?", (object_id,)).fetchone()
        return json.loads(row[0] or "{}") if row else {}

    def save(self, obj: dict[str, Any], *, extra: Any = KEEP, due_at: Any = KEEP) -> dict[str, Any]:
        """Insert or replace ``obj``; ``extra`` holds sandbox-only state never shown to clients."""
        customer_clock = None
        if obj["object"] != "customer" and isinstance(obj.get("customer"), str) and not obj.get("test_clock"):
            # Stripe puts everything of a customer made on a test clock on that clock too.
            row = self.conn.execute("SELECT clock FROM objects WHERE id = ?", (obj["customer"],)).fetchone()
            customer_clock = row[0] if row else None
            if customer_clock and obj.get("test_clock", "") is None:
                obj["test_clock"] = customer_clock
        columns = _columns(obj)
        columns["clock"] = columns["clock"] or customer_clock  # e.g. a Checkout Session's expiry
        data = json.dumps(obj, separators=(",", ":"))
        existing = self.conn.execute(
            "SELECT extra, due_at FROM objects WHERE id = ?", (obj["id"],)).fetchone()
        if existing:
            extra_json = existing[0] if extra is KEEP else json.dumps(extra)
            due = existing[1] if due_at is KEEP else due_at
            self.conn.execute(
                "UPDATE objects SET customer=?, subscription=?, status=?, parent=?, ref=?, due_at=?,"
                " data=?, extra=?, clock=? WHERE id=?",
                (columns["customer"], columns["subscription"], columns["status"], columns["parent"],
                 columns["ref"], due, data, extra_json, columns["clock"], obj["id"]))
        else:
            self.conn.execute(
                "INSERT INTO objects (id, type, created, customer, subscription, status, parent, ref,"
                " due_at, data, extra, clock) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (obj["id"], obj["object"], int(obj.get("created") or 0), columns["customer"],
                 columns["subscription"], columns["status"], columns["parent"], columns["ref"],
                 None if due_at is KEEP else due_at, data,
                 None if extra is KEEP else json.dumps(extra), columns["clock"]))
        return obj

    def set_due(self, object_id: str, due_at: int | None) -> None:
        self.conn.execute("UPDATE objects SET due_at = ? WHERE id = ?", (due_at, object_id))

    def delete(self, object_id: str) -> None:
        self.conn.execute("DELETE FROM objects WHERE id = ?", (object_id,))

    def next_due(self, clock_id: str | None, until: int) -> tuple[str, int] | None:
        """The earliest work due by ``until`` among objects on ``clock_id`` (``None``: on no clock)."""
        row = self.conn.execute(
            "SELECT id, due_at FROM objects WHERE clock IS ? AND due_at IS NOT NULL AND due_at <= ?"
            " ORDER BY due_at, created, id LIMIT 1", (clock_id, until)).fetchone()
        return (row[0], row[1]) if row else None

    def find(self, object_type: str, **columns: Any) -> list[dict[str, Any]]:
        """All objects of a type matching indexed columns, oldest first (small result sets only)."""
        clauses = ["type = ?"]
        values: list[Any] = [object_type]
        for name, value in columns.items():
            assert name in ("customer", "subscription", "status", "parent", "ref")
            clauses.append(f"{name} = ?")
            values.append(value)
        rows = self.conn.execute(
            f"SELECT data FROM objects WHERE {' AND '.join(clauses)} ORDER BY created, id", values)
        return [json.loads(row[0]) for row in rows]

    def page(
        self,
        object_type: str,
        *,
        equals: dict[str, Any] | None = None,
        status_in: Sequence[str] | None = None,
        status_not_in: Sequence[str] | None = None,
        ref_in: Sequence[str] | None = None,
        created: dict[str, int] | None = None,
        limit: int = 10,
        starting_after: tuple[int, str] | None = None,
        ending_before: tuple[int, str] | None = None,
        table: str = "objects",
        type_column: str = "type",
        type_prefix: bool = False,
    ) -> tuple[list[dict[str, Any]], bool]:
        """A page ordered newest first: ``(created DESC, id DESC)``, keyset-paginated."""
        clauses: list[str] = []
        values: list[Any] = []
        if object_type:
            if type_prefix:
                clauses.append(f"{type_column} LIKE ? ESCAPE '\\'")
                values.append(object_type.replace("_", "\\_") + "%")
            else:
                clauses.append(f"{type_column} = ?")
                values.append(object_type)
        for name, value in (equals or {}).items():
            clauses.append(f"{name} = ?")
            values.append(value)
        for column, wanted, negate in (("status", status_in, False), ("status", status_not_in, True),
                                       ("ref", ref_in, False)):
            if wanted is not None:
                marks = ",".join("?" * len(wanted)) or "NULL"
                clauses.append(f"{column} {'NOT IN' if negate else 'IN'} ({marks})")
                values.extend(wanted)
        operators = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "="}
        for op, value in (created or {}).items():
            clauses.append(f"created {operators[op]} ?")
            values.append(value)
        if ending_before is not None:
            clauses.append("(created, id) > (?, ?)")
            values.extend(ending_before)
            order = "created ASC, id ASC"
        else:
            if starting_after is not None:
                clauses.append("(created, id) < (?, ?)")
                values.extend(starting_after)
            order = "created DESC, id DESC"
        where = " AND ".join(clauses) or "1"
        rows = self.conn.execute(
            f"SELECT data FROM {table} WHERE {where} ORDER BY {order} LIMIT ?",
            (*values, limit + 1)).fetchall()
        has_more = len(rows) > limit
        rows = rows[:limit]
        if ending_before is not None:
            rows.reverse()
        return [json.loads(row[0]) for row in rows], has_more

    def cursor_of(self, object_id: str, table: str = "objects") -> tuple[int, str] | None:
        row = self.conn.execute(f"SELECT created, id FROM {table} WHERE id = ?", (object_id,)).fetchone()
        return (row[0], row[1]) if row else None

    # -- meta ------------------------------------------------------------------------------
    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)"
                          " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))


class Store:
    """Pooled SQLite connections plus the single write lock.

    The threaded server runs each request in a new, short-lived thread, so a
    thread-local connection would be opened and leaked per request; a small pool
    gives each thread its own connection for as long as it works instead.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        self._pool: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self.write_lock = threading.RLock()
        self._local = threading.local()
        with self._connection() as conn:
            conn.executescript(SCHEMA)

    def _open(self) -> sqlite3.Connection:
        # Connections move between the short-lived request threads of the server,
        # never used by two at once: the pool hands each out to one holder.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=20)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=20000")
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        held = getattr(self._local, "conn", None)
        if held is not None:  # nested use inside a write transaction: same connection
            yield held
            return
        with self._pool_lock:
            conn = self._pool.pop() if self._pool else None
        if conn is None:
            conn = self._open()
        self._local.conn = conn
        try:
            yield conn
        finally:
            self._local.conn = None
            if conn.in_transaction:
                conn.rollback()
            with self._pool_lock:
                if len(self._pool) < 32:
                    self._pool.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    @contextmanager
    def read(self) -> Iterator[Db]:
        with self._connection() as conn:
            yield Db(conn)

    @contextmanager
    def write(self) -> Iterator[Db]:
        """A serialized IMMEDIATE transaction: committed on success, rolled back on error."""
        with self.write_lock:
            with self._connection() as conn:
                if conn.in_transaction:  # re-entrant use joins the outer transaction
                    yield Db(conn)
                    return
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield Db(conn)
                except BaseException:
                    conn.rollback()
                    raise
                else:
                    conn.commit()

    def wipe(self) -> None:
        with self.write() as db:
            for table in TABLES:
                db.conn.execute(f"DELETE FROM {table}")

    def close(self) -> None:
        with self._pool_lock:
            for conn in self._pool:
                conn.close()
            self._pool.clear()

"""Declarative base, column types and database settings shared by every model."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

from sqlalchemy import DateTime, MetaData, Select, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

# Stable constraint names make Alembic migrations reproducible across SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """Stores UTC and always hands back timezone-aware datetimes.

    SQLite has no time zones, so without this a value would come back naive from
    SQLite and aware from PostgreSQL, and comparisons would break on one of them.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def configure_sqlite(engine: Engine, reads_first: Callable[[], bool] | None = None) -> None:
    """Make SQLite safe under concurrent writers (gunicorn workers, the RQ worker).

    WAL lets readers run beside a writer; IMMEDIATE transactions take the write lock
    up front so two writers queue on the busy timeout instead of deadlocking on a
    lock upgrade, which SQLite reports as "database is locked" at once.

    ``reads_first`` (the portal passes "this is a GET/HEAD/OPTIONS request") says when a
    transaction should start as a plain read instead: a page then reads from a WAL snapshot
    and never queues behind a writer (a worker applying an event, a plan change waiting on
    Stripe), nor makes other pages queue behind it. SQLite serves one writer at a time, so an
    IMMEDIATE transaction for every page made pages wait for each other and for every write.
    Should such a transaction lock (``SELECT ... FOR UPDATE``) or write after all, the read
    snapshot is ended (nothing was written in it) and BEGIN IMMEDIATE taken before that
    statement runs, as PostgreSQL takes its row locks at that statement: what it reads
    from then on is the latest committed state, and it is the only writer.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=20000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.info.pop(_READ_ONLY_SO_FAR, None)  # what the connection's last transaction did
        if reads_first is not None and reads_first():
            connection.exec_driver_sql("BEGIN")
            connection.info[_READ_ONLY_SO_FAR] = True
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    if reads_first is None:
        return

    @event.listens_for(engine, "before_cursor_execute")
    def _lock_before_writing(connection, _cursor, statement, _parameters, context, _executemany):
        if connection.info.get(_READ_ONLY_SO_FAR) and _locks_or_writes(statement, context):
            connection.info.pop(_READ_ONLY_SO_FAR)
            raw = connection.connection.dbapi_connection
            raw.execute("COMMIT")  # ends the read snapshot; nothing was written in it
            raw.execute("BEGIN IMMEDIATE")


# Set on a connection whose transaction began as a plain read and has not locked or written yet.
_READ_ONLY_SO_FAR = "sqlite_read_only_so_far"


def _locks_or_writes(statement: str, context: Any) -> bool:
    """Anything but a plain SELECT: a write, a SAVEPOINT (only taken to write), or a SELECT ... FOR UPDATE
    (SQLite's compiler drops the clause, so it is read from the statement object)."""
    if not statement.lstrip()[:6].upper() == "SELECT":
        return True
    compiled = getattr(context, "compiled", None)
    return getattr(getattr(compiled, "statement", None), "_for_update_arg", None) is not None


T = TypeVar("T")

# ``session.info`` flag: the session's transaction is rolled back as a whole on any error and run again with a
# savepoint around each piece of work (billing/webhooks/processing.py's batches). A refused insert then needs no
# savepoint of its own: the IntegrityError rolls the batch back, and the run with savepoints settles the race
# below as usual. A savepoint is two round trips; a realistic event inserted up to two rows this way.
WHOLE_OR_NOTHING = "whole_or_nothing"


def insert_once(session: Session, row: Any) -> bool:
    """Insert ``row`` in a savepoint; False when a unique constraint says a concurrent writer got there first.

    The savepoint keeps the caller's transaction usable after the refusal, and the
    constraint, not a check beforehand, is what decides who wins the race.
    """
    if session.info.get(WHOLE_OR_NOTHING):
        session.add(row)  # a refusal fails the whole transaction, which is run again with savepoints
        return True
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


def insert_or_load(session: Session, row: T, same: Select[tuple[T]]) -> tuple[T, bool]:
    """``row`` inserted (True), or the row a concurrent writer inserted first, found by ``same`` (False)."""
    if session.info.get(WHOLE_OR_NOTHING):
        session.add(row)  # as in insert_once
        return row, True
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        theirs = session.scalar(same)
        if theirs is None:
            raise  # another constraint failed: not a concurrent twin
        return theirs, False
    return row, True

"""Recording an event on SQLite while another writer holds the write lock: it waits for the lock itself."""
from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import OperationalError

from billing.db import configure_sqlite
from billing.models import Base, ProcessedWebhook
from billing.webhooks import inbox
from billing.webhooks.events import Event


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'inbox.sqlite3'}")
    configure_sqlite(engine)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _event(event_id: str) -> tuple[Event, str]:
    payload = json.dumps({"id": event_id, "object": "event", "type": "invoice.paid", "created": 1, "livemode": False,
                          "data": {"object": {"id": "in_1", "object": "invoice"}}})
    return Event.parse(payload), payload


def _hold_write_lock(engine, seconds: float) -> threading.Thread:
    holder = sqlite3.connect(engine.url.database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    def release():
        time.sleep(seconds)
        holder.execute("COMMIT")
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def _recorded(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(ProcessedWebhook)).scalar()


def _busy_timeouts(engine) -> set[int]:
    with engine.connect() as connection:
        return {connection.connection.driver_connection.execute("PRAGMA busy_timeout").fetchone()[0]}


def test_a_delivery_waits_for_the_write_lock_and_is_recorded(engine):
    holder = _hold_write_lock(engine, 0.3)
    assert inbox.Inbox(engine).record(*_event("evt_waits")) is True
    holder.join()
    assert _recorded(engine) == 1
    assert _busy_timeouts(engine) == {20000}  # the pooled connection is given back as configured


def test_a_lock_held_past_the_wait_fails_the_delivery_and_records_nothing(engine, monkeypatch):
    monkeypatch.setattr(inbox, "_LOCK_WAIT", 0.05)
    holder = _hold_write_lock(engine, 0.5)
    with pytest.raises(OperationalError, match="locked"):
        inbox.Inbox(engine).record(*_event("evt_gives_up"))
    holder.join()
    assert _recorded(engine) == 0
    assert _busy_timeouts(engine) == {20000}

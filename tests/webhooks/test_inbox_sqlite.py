"""Recording an event on SQLite while another writer holds the write lock: it waits for the lock itself."""
from __future__ import annotations

import fcntl
import json
import os
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


def _someone_waits(turn: inbox.Turn) -> bool:
    """Whether a delivery holds its place in the turn (the applier could not take the file exclusively)."""
    probe = os.open(turn.path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(probe)
    return False


def test_a_delivery_waiting_for_the_lock_holds_its_turn_until_it_is_recorded(engine):
    turn = inbox.Turn.for_engine(engine)
    assert turn is not None and turn.path == f"{engine.url.database}-waiting"
    holder = sqlite3.connect(engine.url.database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the applier's batch
    recorded = []
    delivery = threading.Thread(target=lambda: recorded.append(inbox.Inbox(engine).record(*_event("evt_turn"))))
    delivery.start()
    deadline = time.monotonic() + 10
    while not _someone_waits(turn) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert _someone_waits(turn)  # waiting for the write lock, and saying so
    holder.execute("COMMIT")
    holder.close()
    delivery.join()
    assert recorded == [True] and _recorded(engine) == 1
    assert not _someone_waits(turn)  # recorded: its turn is given back


def test_the_applier_lets_a_waiting_delivery_in_before_its_next_batch(engine):
    turn = inbox.Turn.for_engine(engine)
    order = []
    with turn.waiting():  # a delivery waiting for the write lock
        applier = threading.Thread(target=lambda: order.append(("applier", turn.let_waiting_in(at_most=30))))
        applier.start()
        time.sleep(0.05)
        order.append(("delivery", None))  # recorded while the applier held back
    applier.join()
    assert order == [("delivery", None), ("applier", True)]


def test_a_flood_of_deliveries_never_stops_the_applier_for_long(engine):
    turn = inbox.Turn.for_engine(engine)
    with turn.waiting():
        assert turn.let_waiting_in(at_most=0.01) is False  # it goes on with its batch after the bound
    assert turn.let_waiting_in(at_most=0.01) is True


def test_postgresql_and_memory_databases_take_no_turns():
    assert inbox.Turn.for_engine(create_engine("sqlite://")) is None
    assert inbox.Turn.for_engine(create_engine("postgresql+psycopg://u@127.0.0.1:1/x")) is None


def test_the_worker_holds_its_next_batch_while_a_delivery_waits(app, client, acme, monkeypatch):
    from jobs.webhooks import Applier
    from tests.helpers.data import webhook_row
    from tests.webhooks.helpers import event, post, subscription

    with app.app_context():
        from portal.extensions import db
        if db.engine.dialect.name != "sqlite":
            pytest.skip("PostgreSQL locks rows: deliveries never wait for the worker")
        turn = inbox.Turn.for_engine(db.engine)
    monkeypatch.setattr(inbox, "_LET_IN_AT_MOST", 30.0)
    app.config.update(RQ_ASYNC=True)
    payload = event("customer.subscription.created", subscription(sub_id="sub_turn", status="active"))
    post(client, payload)
    applier = Applier(app)
    with turn.waiting():  # a delivery waiting for the write lock
        worker = threading.Thread(target=applier.step)
        worker.start()
        worker.join(0.2)
        assert worker.is_alive()  # held back, its batch not begun
        assert webhook_row(app, payload["id"]).status == "received"
    worker.join()
    assert webhook_row(app, payload["id"]).status == "processed"


def test_a_waiting_delivery_ends_the_batch_after_the_event_under_way(app, client, acme):
    from billing.webhooks import processing
    from portal.extensions import db
    from portal.payments import gateway
    from tests.webhooks.helpers import event, post, subscription

    app.config.update(RQ_ASYNC=True)
    for n in range(3):
        post(client, event("customer.subscription.created", subscription(sub_id=f"sub_wait{n}", status="active")))
    asked = []

    def waits() -> bool:
        asked.append(True)
        return len(asked) == 1  # a delivery waits once, after the first event

    with app.app_context():
        first = processing.apply_pending(db.session, gateway(), {}, budget=60, someone_waits=waits)
        rest = processing.apply_pending(db.session, gateway(), {}, budget=60, someone_waits=waits)
        db.session.remove()
    assert len(first.settled) == 1 and len(rest.settled) == 2

"""SQLite transactions: pages read beside a writer; anything that locks or writes still takes the one write lock.

Issue #16, finding 13: every transaction began with BEGIN IMMEDIATE, so each page held
SQLite's only write lock for its whole request and 20 users' pages queued behind each
other (and behind every write) on the busy timeout. Reading requests now start a plain
read transaction, which takes the write lock only at their first lock or write.
"""
import sqlite3

import pytest
from sqlalchemy import create_engine, event, select
from sqlalchemy.orm import Session

from billing.db import Base, configure_sqlite, insert_once
from billing.models import App, ProcessedWebhook


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "transactions.sqlite3"
    setup = create_engine(f"sqlite:///{path}")
    configure_sqlite(setup)
    Base.metadata.create_all(setup)
    with Session(setup) as session:
        session.add(App(name="Acme", slug="acme"))
        session.commit()
    setup.dispose()
    return path


@pytest.fixture
def reading_engine(database):
    """The portal's engine while it serves a GET: ``reads_first`` says yes."""
    engine = create_engine(f"sqlite:///{database}")
    configure_sqlite(engine, reads_first=lambda: True)
    yield engine
    engine.dispose()


def other_writer(path):
    """Another process's connection; ``busy_timeout=0``: it fails at once instead of waiting for a lock."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=0)
    connection.execute("PRAGMA busy_timeout=0")
    return connection


def test_a_read_runs_while_another_connection_holds_the_write_lock(database, reading_engine):
    writer = other_writer(database)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE apps SET name = 'Acme (being renamed)'")
    try:
        with Session(reading_engine) as session:
            # With BEGIN IMMEDIATE this waited for the writer (20 s busy timeout) and then failed.
            assert session.scalar(select(App.name)) == "Acme"  # the last committed state
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_read_does_not_hold_the_write_lock(database, reading_engine):
    writer = other_writer(database)
    try:
        with Session(reading_engine) as session:
            session.scalar(select(App.name))
            writer.execute("BEGIN IMMEDIATE")  # raises "database is locked" if the reader held the lock
            assert writer.in_transaction  # the other connection holds the write lock while the read is open
            writer.execute("ROLLBACK")
    finally:
        writer.close()


@pytest.mark.parametrize("lock", ["select for update", "update", "insert in a savepoint"])
def test_locking_or_writing_takes_the_write_lock_before_the_statement(database, reading_engine, lock):
    writer = other_writer(database)
    try:
        with Session(reading_engine) as session:
            app = session.scalar(select(App))  # a read first: the transaction began as a plain read
            if lock == "select for update":
                session.scalar(select(App).where(App.id == app.id).with_for_update())
            elif lock == "update":
                app.name = "Acme Analytics"
                session.flush()
            else:
                assert insert_once(session, ProcessedWebhook(event_id="evt_1", type="invoice.paid", created=1,
                                                             livemode=False, payload="{}", status="received"))
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                writer.execute("BEGIN IMMEDIATE")  # the session holds the one write lock now
            session.commit()
        writer.execute("BEGIN IMMEDIATE")  # released at commit
        writer.execute("ROLLBACK")
    finally:
        writer.close()


def test_the_lock_is_taken_after_a_writer_that_committed_meanwhile(database, reading_engine):
    """A row read under the lock is the latest committed one, as after PostgreSQL's SELECT ... FOR UPDATE."""
    writer = other_writer(database)
    try:
        with Session(reading_engine) as session:
            assert session.scalar(select(App.name)) == "Acme"
            writer.execute("UPDATE apps SET name = 'Acme renamed meanwhile'")  # commits (autocommit)
            locked = session.scalar(select(App).with_for_update().execution_options(populate_existing=True))
            assert locked.name == "Acme renamed meanwhile"
            locked.name += " and again"
            session.commit()
        assert writer.execute("SELECT name FROM apps").fetchone() == ("Acme renamed meanwhile and again",)
    finally:
        writer.close()


def test_without_reads_first_every_transaction_takes_the_write_lock_at_once(database):
    """Jobs, commands and POST requests keep BEGIN IMMEDIATE from their first statement."""
    engine = create_engine(f"sqlite:///{database}")
    configure_sqlite(engine)
    begun = []
    event.listen(engine, "before_cursor_execute", lambda *args: begun.append(args[2]))
    writer = other_writer(database)
    try:
        with Session(engine) as session:
            session.scalar(select(App.name))
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                writer.execute("BEGIN IMMEDIATE")
        assert begun[0] == "BEGIN IMMEDIATE"
    finally:
        writer.close()
        engine.dispose()


def test_pages_answer_while_a_writer_holds_the_lock_and_forms_still_take_it(app, owner_client, tenant):
    """The portal passes ``reads_first`` for GET requests only: a form's POST locks from its first statement."""
    from portal.extensions import db

    with app.app_context():
        engine = db.engine
        path = engine.url.database
    begins = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: begins.append(statement) if statement.startswith("BEGIN") else None)

    writer = other_writer(path)
    writer.execute("BEGIN IMMEDIATE")  # a worker applying an event, a plan change waiting on Stripe
    try:
        for page in ("/dashboard", f"/apps/{tenant.id}", f"/apps/{tenant.id}/billing", f"/apps/{tenant.id}/invoices"):
            assert owner_client.get(page).status_code == 200, page
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert set(begins) == {"BEGIN"}

    begins.clear()
    assert owner_client.post("/logout").status_code == 302
    assert begins[0] == "BEGIN IMMEDIATE"


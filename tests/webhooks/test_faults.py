"""Faults with real processes: workers killed with SIGKILL mid-batch, two workers racing for one object's events,
Redis restarted empty mid-stream, an RQ job whose work horse is killed. Nothing lost, nothing applied twice,
nothing moved backwards.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import func, select

from billing.models import AuditLog, KernelInvoice, ProcessedWebhook, WebhookStatus
from billing.sync import INVOICE_PROGRESS
from jobs.queues import DEFAULT
from portal.extensions import db
from scripts.services import PYTHON, ROOT, start_redis
from tests.webhooks.helpers import event, invoice, post

INVOICES = 60  # three events each: created (draft), finalized (open), updated (paid)


def _worker(app, log: Path, *args: str) -> subprocess.Popen:
    env = {
        "PORTAL_ENV": "test", "SECRET_KEY": app.config["SECRET_KEY"],
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": app.config["REDIS_URL"],
        "STRIPE_KERNEL_WEBHOOK_SECRET": "whsec_unused", "PYTHONUNBUFFERED": "1",
    }
    with open(log, "ab") as output:
        return subprocess.Popen([PYTHON, "-m", "jobs.worker", *args], cwd=ROOT, env={**os.environ, **env},
                                stdout=output, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _statuses(app) -> dict[str, int]:
    with app.app_context():
        rows = db.session.execute(select(ProcessedWebhook.status, func.count()).group_by(ProcessedWebhook.status))
        result = {status.value: n for status, n in rows}
        db.session.remove()
    return result


def _wait_settled(app, total: int, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = _statuses(app)
        if statuses.get("processed", 0) + statuses.get("ignored", 0) + statuses.get("failed", 0) >= total:
            return
        time.sleep(0.1)
    raise TimeoutError(f"not applied after {timeout}s: {_statuses(app)}\n{log.read_text(errors='replace')[-3000:]}")


def _histories(seed: int) -> list[dict]:
    """Three events per invoice of ours, posted in a shuffled order (late, out of order)."""
    events = []
    for n in range(INVOICES):
        invoice_id = f"in_fault{seed}_{n}"
        base = 1_800_000_000 + n * 10
        events += [
            event("invoice.created", invoice(invoice_id, status="draft", number=None), created=base),
            event("invoice.finalized", invoice(invoice_id, status="open", number=f"F-{n}"), created=base + 1),
            # invoice.updated rather than invoice.paid: no Stripe behind these tests to ask for the PaymentIntent
            event("invoice.updated", invoice(invoice_id, status="paid", amount_paid=9900, number=f"F-{n}"),
                  created=base + 2),
        ]
    random.Random(seed).shuffle(events)
    return events


def _assert_applied_once_and_forward(app, events: list[dict]) -> None:
    with app.app_context():
        rows = db.session.scalars(select(ProcessedWebhook)).all()
        assert len(rows) == len(events)
        assert {row.status for row in rows} == {WebhookStatus.PROCESSED}
        assert all(row.attempts == 1 for row in rows), [(r.event_id, r.attempts) for r in rows if r.attempts != 1]
        invoices = db.session.scalars(select(KernelInvoice)).all()
        assert len(invoices) == INVOICES
        assert {(row.status, row.amount_paid) for row in invoices} == {("paid", 9900)}
        # Each event's changes were committed once (a batch rolled back by a kill left nothing behind)...
        per_event = dict(db.session.execute(select(AuditLog.correlation_id, func.count()).where(
            AuditLog.object_type == "kernel_invoice").group_by(AuditLog.correlation_id)).all())
        assert all(count == 1 for count in per_event.values()), per_event
        # ...and no invoice ever moved back in the audit trail.
        for entry in db.session.scalars(select(AuditLog).where(AuditLog.object_type == "kernel_invoice")):
            if entry.before:
                assert INVOICE_PROGRESS[entry.after["status"]] >= INVOICE_PROGRESS[entry.before["status"]]


@pytest.mark.postgres
def test_workers_killed_mid_batch_and_racing_apply_every_event_once(postgres_backend, app, client, acme, tmp_path):
    app.config["RQ_ASYNC"] = True  # the endpoint records; the worker processes apply
    events = _histories(1)
    log = tmp_path / "workers.log"
    first, second = _worker(app, log, "--events-only"), _worker(app, log, "--events-only")
    replacement = None
    try:
        for number, payload in enumerate(events):
            assert post(client, payload).status_code == 200
            if number == len(events) // 3:
                os.killpg(first.pid, signal.SIGKILL)  # mid-stream, most likely mid-batch
                first.wait()
            if number == 2 * len(events) // 3:
                replacement = _worker(app, log, "--events-only")  # two workers race again
        _wait_settled(app, len(events), 60, log)
    finally:
        for process in (first, second, replacement):
            if process is not None:
                _stop(process)
    _assert_applied_once_and_forward(app, events)


def test_redis_restarted_empty_mid_stream_delays_nothing(app, client, acme, tmp_path):
    redis = start_redis(tmp_path / "redis")
    port = int(redis.url.rsplit(":", 1)[1].split("/")[0])
    app.config.update(RQ_ASYNC=True, REDIS_URL=redis.url, RATELIMIT_STORAGE_URI=redis.url)
    events = _histories(2)
    log = tmp_path / "worker.log"
    worker = _worker(app, log)  # the whole worker: the applier and its RQ child with the scheduler
    try:
        time.sleep(1.5)
        for number, payload in enumerate(events):
            assert post(client, payload).status_code == 200
            if number == len(events) // 2:
                redis.stop()  # down, and back empty
                redis = start_redis(tmp_path / "redis", port)
        _wait_settled(app, len(events), 30, log)
        assert worker.poll() is None
        # The RQ child reconnected and registered the schedules again in the emptied Redis.
        connection = Redis.from_url(app.config["REDIS_URL"])
        deadline = time.monotonic() + 30
        while not list(connection.scan_iter(match="kbp:schedule:registered:*")) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert list(connection.scan_iter(match="kbp:schedule:registered:*")), log.read_text()[-3000:]
    finally:
        _stop(worker)
        redis.stop()
    _assert_applied_once_and_forward(app, events)


def test_a_job_whose_work_horse_is_killed_runs_again_within_a_minute(app, tmp_path):
    runs = tmp_path / "runs.txt"
    log = tmp_path / "worker.log"
    Queue(DEFAULT, connection=Redis.from_url(app.config["REDIS_URL"])).empty()
    worker = _worker(app, log)
    try:
        queue = Queue(DEFAULT, connection=Redis.from_url(app.config["REDIS_URL"]))
        queue.enqueue("tests.webhooks.fault_jobs.note_run_and_sleep", str(runs), 120, job_timeout=300)
        deadline = time.monotonic() + 30
        while not runs.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        horse = int(runs.read_text().split()[0])
        os.kill(horse, signal.SIGKILL)
        killed_at = time.monotonic()
        while len(runs.read_text().split()) < 2 and time.monotonic() - killed_at < 60:
            time.sleep(0.5)
        assert len(runs.read_text().split()) == 2, log.read_text()[-3000:]
        assert worker.poll() is None
    finally:
        _stop(worker)
        Queue(DEFAULT, connection=Redis.from_url(app.config["REDIS_URL"])).empty()


def test_a_job_whose_whole_worker_is_killed_runs_again_within_a_minute(app, tmp_path):
    """The worker process and its work horse gone at once (SIGKILL to the group, a machine lost): the job's
    registry entry expires and the next worker's maintenance round queues it again."""
    runs = tmp_path / "runs.txt"
    log = tmp_path / "worker.log"
    connection = Redis.from_url(app.config["REDIS_URL"])
    Queue(DEFAULT, connection=connection).empty()
    worker = _worker(app, log)
    replacement = None
    try:
        Queue(DEFAULT, connection=connection).enqueue("tests.webhooks.fault_jobs.note_run_and_sleep", str(runs), 120,
                                                      job_timeout=300)
        deadline = time.monotonic() + 30
        while not runs.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        os.killpg(worker.pid, signal.SIGKILL)
        os.kill(int(runs.read_text().split()[0]), signal.SIGKILL)  # the horse too, whatever its group
        worker.wait()
        killed_at = time.monotonic()
        replacement = _worker(app, log)
        while len(runs.read_text().split()) < 2 and time.monotonic() - killed_at < 60:
            time.sleep(0.5)
        assert len(runs.read_text().split()) == 2, log.read_text()[-3000:]
    finally:
        for process in (worker, replacement):
            if process is not None:
                _stop(process)
        Queue(DEFAULT, connection=connection).empty()

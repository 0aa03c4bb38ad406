"""The pump (handed-off ids become RQ jobs, claimed ids survive a crash, no job twice) and the sweeper (the safety net).

These talk to the session's Redis and its ``webhooks`` queue; the inbox keys are
emptied around each test by tests/webhooks/conftest.py.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus

from billing.models import ProcessedWebhook, WebhookStatus
from jobs.schedules import schedule_by_id
from jobs.webhook_pump import CLAIMED_KEY, INBOX_KEY, Pump, create_job, retry_policy
from jobs.webhooks import sweep_inbox
from jobs.worker import start_pump, stop_pump
from portal.extensions import db
from scripts.services import ROOT
from tests.webhooks.conftest import count, webhook_row
from tests.webhooks.helpers import event, post, subscription


@pytest.fixture
def redis(redis_url):
    connection = Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def queue(redis):
    webhooks = Queue("webhooks", connection=redis)
    webhooks.empty()
    yield webhooks
    webhooks.empty()


def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.02)


def test_handed_off_ids_become_jobs_oldest_first(redis, queue):
    for event_id in ("evt_pump_1", "evt_pump_2", "evt_pump_3"):
        redis.lpush(INBOX_KEY, event_id)  # as the endpoint does

    assert Pump(redis).drain() == 3

    assert queue.job_ids == ["webhook-evt_pump_1", "webhook-evt_pump_2", "webhook-evt_pump_3"]
    job = queue.fetch_job("webhook-evt_pump_1")
    assert job.func_name == "jobs.webhooks.process_event" and job.args == ("evt_pump_1",)
    assert job.retries_left == 5 and job.retry_intervals == [10, 60, 300, 1800, 7200]
    assert (job.result_ttl, job.failure_ttl) == (60, 7 * 86400)
    assert redis.llen(INBOX_KEY) == 0 and redis.llen(CLAIMED_KEY) == 0


def test_an_id_claimed_by_a_pump_that_died_is_recovered_by_the_next(redis, queue):
    # A pump moved this id to the claimed list and died before its job existed.
    redis.lpush(CLAIMED_KEY, "evt_orphan")
    redis.lpush(INBOX_KEY, "evt_fresh")

    deadline = time.monotonic() + 10
    Pump(redis, block=timedelta(milliseconds=50)).run(should_stop=lambda: queue.count == 2 or time.monotonic() > deadline)

    assert sorted(queue.job_ids) == ["webhook-evt_fresh", "webhook-evt_orphan"]
    assert redis.llen(CLAIMED_KEY) == 0 and redis.llen(INBOX_KEY) == 0


def test_a_job_already_waiting_is_not_created_twice(redis, queue):
    first = create_job(queue, "evt_twice", retry_policy())
    redis.lpush(INBOX_KEY, "evt_twice", "evt_twice")  # e.g. swept, then its id came through the inbox as well
    redis.lpush(INBOX_KEY, "evt_new", "evt_new")  # twice in one batch, no job yet

    assert Pump(redis).drain() == 4

    assert queue.job_ids == ["webhook-evt_twice", "webhook-evt_new"]
    assert Job.fetch("webhook-evt_twice", connection=redis).enqueued_at == first.enqueued_at


def test_a_burst_is_handed_over_in_batches_and_junk_never_blocks_the_pump(redis, queue):
    ids = [f"evt_burst_{n:03d}" for n in range(250)]
    redis.lpush(INBOX_KEY, *ids[:120], "not an event id", *ids[120:])

    assert Pump(redis, batch=100).drain() == 251

    assert queue.job_ids == [f"webhook-{event_id}" for event_id in ids]
    assert redis.llen(INBOX_KEY) == 0 and redis.llen(CLAIMED_KEY) == 0


def test_a_job_that_is_over_is_replaced_by_a_fresh_one(redis, queue):
    old = create_job(queue, "evt_again", retry_policy())
    queue.remove(old)
    old.set_status(JobStatus.FAILED)
    redis.lpush(INBOX_KEY, "evt_again")

    Pump(redis).drain()

    assert queue.job_ids == ["webhook-evt_again"]
    assert Job.fetch("webhook-evt_again", connection=redis).get_status() == JobStatus.QUEUED


def test_the_worker_runs_the_pump_as_a_process_and_stops_it(redis_url, redis, queue):
    pump = start_pump(redis_url)
    try:
        redis.lpush(INBOX_KEY, "evt_process")
        _until(lambda: queue.count == 1)
        assert queue.job_ids == ["webhook-evt_process"]
    finally:
        stop_pump(pump)
    assert pump.returncode == 0  # stopped on SIGTERM, not killed


def test_a_pump_whose_worker_is_gone_stops_by_itself(redis_url):
    # ``--parent`` names a process that is not its parent (this one is): as if the worker had been killed outright.
    not_its_parent = str(os.getpid() + 1)
    pump = subprocess.run([sys.executable, "-m", "jobs.webhook_pump", "--parent", not_its_parent], cwd=ROOT, timeout=30,
                          env={**os.environ, "REDIS_URL": redis_url}, capture_output=True, text=True)
    assert pump.returncode == 0 and "webhook pump stopped" in pump.stderr


def _received(app, event_id: str, age: timedelta, status: WebhookStatus = WebhookStatus.RECEIVED) -> None:
    with app.app_context():
        db.session.add(ProcessedWebhook(event_id=event_id, type="invoice.created", object_id="in_1", created=1,
                                        livemode=False, payload="{}", status=status, attempts=0,
                                        received_at=datetime.now(timezone.utc) - age))
        db.session.commit()


def test_the_sweeper_queues_old_received_events_without_a_job_and_nothing_else(app, queue):
    _received(app, "evt_lost", timedelta(minutes=5))
    _received(app, "evt_lost_too", timedelta(minutes=2))
    _received(app, "evt_just_now", timedelta(seconds=5))  # its hand-off may still be on its way
    _received(app, "evt_with_job", timedelta(minutes=5))
    create_job(queue, "evt_with_job", retry_policy())
    _received(app, "evt_done", timedelta(minutes=5), WebhookStatus.PROCESSED)
    _received(app, "evt_failed", timedelta(minutes=5), WebhookStatus.FAILED)
    _received(app, "evt_ignored", timedelta(minutes=5), WebhookStatus.IGNORED)

    assert sweep_inbox() == 2
    assert sorted(queue.job_ids) == ["webhook-evt_lost", "webhook-evt_lost_too", "webhook-evt_with_job"]
    assert queue.fetch_job("webhook-evt_lost").retries_left == 5
    assert sweep_inbox() == 0  # idempotent
    assert len(queue.job_ids) == 3


def test_the_sweeper_runs_every_minute_and_its_schedule_comes_back_after_redis_lost_it(redis_url):
    from rq.registry import ScheduledJobRegistry

    from jobs.queues import QUEUES
    from jobs.worker import PortalWorker

    schedule = schedule_by_id("webhooks-sweep")
    assert schedule.func == "jobs.webhooks.sweep_inbox" and schedule.every == timedelta(minutes=1)
    empty = Redis.from_url(redis_url.rsplit("/", 1)[0] + "/8")  # as a Redis restarted without its data
    empty.flushdb()
    try:
        PortalWorker(QUEUES, connection=empty).run_maintenance_tasks()  # every 10 minutes in a running worker
        scheduled = ScheduledJobRegistry(schedule.queue, connection=empty).get_job_ids()
        assert any(job.startswith("schedule-webhooks-sweep-") for job in scheduled)
    finally:
        empty.flushdb()
        empty.close()


def test_an_event_handed_off_while_no_pump_runs_is_processed_once_the_sweeper_queues_it(app, client, acme, queue,
                                                                                       redis):
    from rq import SimpleWorker

    app.config["RQ_ASYNC"] = True
    payload = event("customer.subscription.created", subscription(sub_id="sub_swept"))
    assert post(client, payload).status_code == 200
    redis.delete(INBOX_KEY)  # Redis restarted empty before any pump took the id

    assert sweep_inbox(now=datetime.now(timezone.utc) + timedelta(seconds=31)) == 1
    SimpleWorker([queue], connection=redis).work(burst=True)
    assert webhook_row(app, payload["id"]).status == WebhookStatus.PROCESSED
    assert count(app, ProcessedWebhook) == 1

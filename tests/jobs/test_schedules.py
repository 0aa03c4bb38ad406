"""Recurring schedules: stable ids, registered once however often workers start, chained when they run."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest
from redis import Redis
from rq import SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from jobs.queues import DEFAULT, QUEUES
from jobs.schedules import SCHEDULES, Schedule, register


@pytest.fixture
def redis(redis_url):
    """A Redis database of its own, emptied, so other tests' queues are not disturbed."""
    connection = Redis.from_url(redis_url.rsplit("/", 1)[0] + "/9")
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


def _scheduled(redis) -> list[str]:
    return sorted(ScheduledJobRegistry(DEFAULT, connection=redis).get_job_ids())


def test_registering_twice_does_not_duplicate_schedules(redis):
    now = datetime(2026, 12, 1, 15, 7, tzinfo=timezone.utc)
    first = register(redis, now=now)
    again = register(redis, now=now + timedelta(seconds=30))  # a second worker, or a restart
    assert first == again
    assert _scheduled(redis) == sorted(first)
    assert sorted(first) == [
        "schedule-alert-rules-20261201T150800Z",  # every minute
        "schedule-dunning-daily-20261202T120000Z",  # 09:00 in São Paulo, tomorrow: today's 09:00 has passed
        "schedule-gateway-idempotency-purge-20261202T061500Z",  # 03:15 in São Paulo
        "schedule-mrr-snapshot-20261201T160000Z",  # on the hour
        "schedule-notices-send-20261201T151000Z",
        "schedule-reconciliation-nightly-20261202T053000Z",  # 02:30 in São Paulo
    ]
    job = Job.fetch("schedule-dunning-daily-20261202T120000Z", connection=redis)
    assert job.func_name == "jobs.schedules.run_scheduled" and job.args == ("dunning-daily",)


def test_schedule_ids_are_unique_and_each_names_a_job():
    assert len({schedule.id for schedule in SCHEDULES}) == len(SCHEDULES)
    from werkzeug.utils import import_string

    for schedule in SCHEDULES:
        assert callable(import_string(schedule.func))


def test_next_occurrences():
    daily = Schedule("x", "jobs.dunning.run_daily", daily_at=time(9, 0))
    before = datetime(2026, 12, 1, 11, 59, tzinfo=timezone.utc)  # 08:59 in São Paulo
    assert daily.next_after(before) == datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    assert daily.next_after(datetime(2026, 12, 1, 12, tzinfo=timezone.utc)) == datetime(2026, 12, 2, 12,
                                                                                       tzinfo=timezone.utc)
    every = Schedule("y", "jobs.notices.send_pending", every=timedelta(minutes=5))
    assert every.next_after(datetime(2026, 12, 1, 12, 4, 59, tzinfo=timezone.utc)) == datetime(
        2026, 12, 1, 12, 5, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        Schedule("z", "jobs.notices.send_pending")


def test_a_due_occurrence_runs_once_and_schedules_the_next(app, redis):
    past = datetime.now(timezone.utc) - timedelta(minutes=30)
    [due] = register(redis, [schedule for schedule in SCHEDULES if schedule.id == "notices-send"], now=past)
    worker = SimpleWorker(QUEUES, connection=redis)
    worker.work(burst=True, with_scheduler=True)

    job = Job.fetch(due, connection=redis)
    assert job.is_finished, job.latest_result()
    assert job.return_value() is None  # no SMTP configured: nothing to send
    [following] = _scheduled(redis)
    assert following.startswith("schedule-notices-send-") and following > due
    assert register(redis, [schedule for schedule in SCHEDULES if schedule.id == "notices-send"]) == [following]
    assert _scheduled(redis) == [following]

"""Recurring jobs, declared as data, registered at worker start with stable ids.

Why the scheduler's ``enqueue_at`` with stable job ids, and not RQ 2.12's
``rq.cron.CronScheduler``: a CronScheduler keeps its schedule in the memory of one
``rq cron`` process and does not coordinate with others, so a second one (or a
restart that lands inside the same minute) enqueues the same job again. Here each
*occurrence* of a schedule is one RQ job whose id names the schedule and the
moment (``schedule-dunning-daily-20261127T120000Z``):

* registering it again (a restart, a second worker) is refused by a Redis
  ``SET NX`` on that id, and finds the job already in RQ's scheduled registry;
* the workers' scheduler (``--with-scheduler``; one lock per queue across all
  workers) moves it to its queue when it falls due;
* when it runs it first registers the next occurrence, so the chain goes on
  without a separate process;
* the job itself then claims a ``JobRun`` for its window (``billing/runs.py``), so
  even a duplicate that slipped past all this would do nothing.

Schedules run on wall-clock time (RQ's scheduler knows no other); the jobs read
"now" from ``billing.clock``, which in sandbox mode follows the sandbox's test
clock. Times of day are in São Paulo, where the kernel's customers are.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Iterable, Optional

from redis import Redis
from rq import Queue
from rq.job import Job
from werkzeug.utils import import_string

from billing.clock import BUSINESS_TIMEZONE
from jobs.queues import DEFAULT

log = logging.getLogger(__name__)

RUNNER = "jobs.schedules.run_scheduled"
REGISTERED_PREFIX = "kbp:schedule:registered:"


@dataclass(frozen=True)
class Schedule:
    """A job that recurs: every day at ``daily_at`` (São Paulo), or every ``every``."""

    id: str  # stable: it names the occurrences, so renaming it starts a new chain
    func: str  # dotted path of the job function
    daily_at: Optional[time] = None
    every: Optional[timedelta] = None
    queue: str = DEFAULT
    timeout_seconds: int = 600

    def __post_init__(self):
        if (self.daily_at is None) == (self.every is None):
            raise ValueError(f"schedule {self.id}: give exactly one of daily_at and every")

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment`` (aware), in UTC."""
        if self.every is not None:
            step = self.every.total_seconds()
            slot = (math.floor(moment.timestamp() / step) + 1) * step
            return datetime.fromtimestamp(slot, tz=timezone.utc)
        local = moment.astimezone(BUSINESS_TIMEZONE)
        candidate = datetime.combine(local.date(), self.daily_at, tzinfo=BUSINESS_TIMEZONE)
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), self.daily_at, tzinfo=BUSINESS_TIMEZONE)
        return candidate.astimezone(timezone.utc)

    def occurrence_id(self, when: datetime) -> str:
        return f"schedule-{self.id}-{when.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}"  # RQ allows [A-Za-z0-9_-]


SCHEDULES: tuple[Schedule, ...] = (
    # Before the working day: yesterday's payments and refunds are all in, the ERP reads the summary at 06:00.
    Schedule("reconciliation-nightly", "jobs.reconciliation.run_nightly", daily_at=time(2, 30),
             timeout_seconds=3600),
    # Mid-morning: retries hit cards when banks' fraud checks are least strict and owners can react to notices.
    Schedule("dunning-daily", "jobs.dunning.run_daily", daily_at=time(9, 0), timeout_seconds=1800),
    Schedule("notices-send", "jobs.notices.send_pending", every=timedelta(minutes=5)),
    # Hourly, so the "MRR down 20% in 24 h" rule has a figure from 24 hours ago; charts read each day's last.
    Schedule("mrr-snapshot", "jobs.snapshots.take_hourly", every=timedelta(hours=1), timeout_seconds=300),
    # Alert rules (billing/alert_rules.py): raised, kept or resolved a minute at most after their condition changes.
    Schedule("alert-rules", "jobs.alerts.evaluate_rules", every=timedelta(minutes=1), timeout_seconds=120),
    # Gateway API answers are replayable for 48 h (at least the 24 h the API promises), then forgotten.
    Schedule("gateway-idempotency-purge", "jobs.gateway_api.purge_idempotency", daily_at=time(3, 15),
             timeout_seconds=600),
)


def schedule_by_id(schedule_id: str, schedules: Iterable[Schedule] = SCHEDULES) -> Schedule:
    for schedule in schedules:
        if schedule.id == schedule_id:
            return schedule
    raise KeyError(f"no schedule {schedule_id!r}")


def register(connection: Redis, schedules: Iterable[Schedule] = SCHEDULES,
             now: Optional[datetime] = None) -> list[str]:
    """Make sure the next occurrence of each schedule is scheduled once; returns their job ids."""
    now = now or datetime.now(timezone.utc)
    ids = []
    for schedule in schedules:
        when = schedule.next_after(now)
        job_id = schedule.occurrence_id(when)
        ids.append(job_id)
        # Kept until a day after the occurrence: long enough that nobody registers it again.
        keep = max(int((when - now).total_seconds()) + 86400, 60)
        if not connection.set(REGISTERED_PREFIX + job_id, "1", nx=True, ex=keep):
            continue  # another worker, or an earlier start of this one, registered it
        if Job.exists(job_id, connection=connection):
            continue
        try:
            Queue(schedule.queue, connection=connection).enqueue_at(
                when, RUNNER, schedule.id, job_id=job_id, job_timeout=schedule.timeout_seconds,
                description=f"{schedule.id} at {when:%Y-%m-%d %H:%M} UTC")
        except Exception:
            connection.delete(REGISTERED_PREFIX + job_id)  # let the next start try again
            raise
        log.info("scheduled %s (%s) at %s", schedule.id, schedule.func, when.isoformat())
    return ids


def run_scheduled(schedule_id: str, schedules: Iterable[Schedule] = SCHEDULES):
    """The job behind every occurrence: chain the next one first, then run the schedule's job."""
    from rq import get_current_job

    schedules = tuple(schedules)
    schedule = schedule_by_id(schedule_id, schedules)
    job = get_current_job()
    if job is not None:
        # First, so that a failing job never ends its own schedule.
        register(job.connection, [schedule])
    log.info("running schedule %s: %s", schedule.id, schedule.func)
    return import_string(schedule.func)()

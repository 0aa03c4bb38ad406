"""``python -m jobs.worker``: an RQ worker with RQ's scheduler, for every queue the portal uses, and a webhook pump.

The pump (``jobs/webhook_pump.py``) turns the event ids the webhook endpoint hands
off into RQ jobs. It runs as a child *process*, not a thread: RQ forks a work horse
for every job, and forking a process that runs other threads is unsafe. It stops
with the worker (and on its own if the worker is killed outright).
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys

from redis import Redis
from redis.exceptions import RedisError
from rq import Worker

from billing import metrics
from jobs.context import portal_app
from jobs.queues import QUEUES
from jobs.schedules import register as register_schedules
from portal.config import ROOT

log = logging.getLogger(__name__)


def start_pump(redis_url: str) -> subprocess.Popen:
    """The webhook pump as a child process, on the worker's Redis; it writes to the worker's log."""
    return subprocess.Popen([sys.executable, "-m", "jobs.webhook_pump", "--parent", str(os.getpid())], cwd=ROOT,
                            env={**os.environ, "REDIS_URL": redis_url})


def stop_pump(pump: subprocess.Popen) -> None:
    if pump.poll() is None:
        pump.terminate()  # the pump finishes the id in hand, then exits (within about a second)
        try:
            pump.wait(10)
        except subprocess.TimeoutExpired:
            pump.kill()
            pump.wait()


class PortalWorker(Worker):
    """RQ's worker; each maintenance round (every 10 minutes) also makes sure the schedules are registered."""

    def execute_job(self, job, queue):
        try:
            return super().execute_job(job, queue)
        finally:
            # Each job ran in a work horse of its own, which left its Prometheus counters in a file: fold the
            # files of horses that are gone once there are enough of them to be worth it.
            metrics.compact(minimum=metrics.COMPACT_ABOVE)

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        # A Redis restarted empty loses the chain of occurrences, the sweeper's included (the very case it is
        # there for); registering is idempotent, so doing it again here restores them without a restart.
        try:
            register_schedules(self.connection)
        except RedisError as error:
            log.warning("could not check the schedules: %s", error)
        metrics.compact()


def main() -> None:
    app = portal_app()
    connection = Redis.from_url(app.config["REDIS_URL"])
    # Stable ids: a restart or a second worker finds the schedules already there (see jobs/schedules.py).
    for job_id in register_schedules(connection):
        log.info("schedule ready: %s", job_id)
    worker = PortalWorker(QUEUES, connection=connection)
    pump = start_pump(app.config["REDIS_URL"])
    log.info("RQ worker listening on %s; webhook pump started (pid %d)", ", ".join(QUEUES), pump.pid)
    try:
        # The scheduler runs delayed jobs (retries with backoff, dunning steps) and the recurring schedules.
        worker.work(with_scheduler=True, logging_level="INFO")
    finally:
        stop_pump(pump)


if __name__ == "__main__":
    main()

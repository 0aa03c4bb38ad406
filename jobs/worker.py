"""``python -m jobs.worker``: the portal's background worker. Run one or several, on one machine or many.

Two parts, two processes:

* this process applies Stripe's events (``jobs.webhooks.Applier``): it needs only the
  database, so it runs whether Redis is up or not;
* a child process, ``python -m jobs.worker --rq``, is an RQ worker with RQ's scheduler for
  the other jobs (dunning, reconciliation, notices, the schedules). It rides out a Redis
  outage of any length, reconnecting with backoff, and registers the schedules again
  each time it reconnects (a Redis restarted empty lost them). This process restarts it
  whenever it exits, and it exits when this process dies (``PR_SET_PDEATHSIG``).

Why a child and not a thread: RQ's worker installs signal handlers (main thread only)
and forks a work horse per job, which is unsafe in a process running other threads.
"""
from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Optional

from redis import Redis
from redis.exceptions import RedisError
from rq import Worker
from rq.exceptions import AbandonedJobError

from billing import metrics
from jobs.context import portal_app
from jobs.queues import QUEUES
from jobs.schedules import register as register_schedules
from portal.config import ROOT

log = logging.getLogger(__name__)

# How soon a job whose work horse was killed (SIGKILL, out of memory, a machine lost) runs again:
# its registry entry expires HEARTBEAT_GRACE s after the last heartbeat (one every JOB_MONITORING s),
# and the next maintenance round (every MAINTENANCE s) puts it back in its queue: under a minute.
JOB_MONITORING = 10
HEARTBEAT_GRACE = 15
MAINTENANCE = 15
ABANDONED_RUNS = 3  # a job abandoned this many times is left failed: it is what kills its worker
RECONNECT_MAX = 10.0  # seconds between attempts to reach Redis, at most


class PortalWorker(Worker):
    """RQ's worker, with abandoned jobs run again within a minute and the schedules kept registered."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("job_monitoring_interval", JOB_MONITORING)
        kwargs.setdefault("maintenance_interval", MAINTENANCE)
        # An idle worker waits for a job this long minus 15 s before it looks at its maintenance clock again:
        # RQ's 420 s would leave an abandoned job waiting for minutes.
        kwargs.setdefault("worker_ttl", MAINTENANCE + 15)
        kwargs.setdefault("exception_handlers", [requeue_abandoned])
        super().__init__(*args, **kwargs)

    def get_heartbeat_ttl(self, job) -> int:
        # RQ adds a fixed minute to every heartbeat: an abandoned job would wait that long before anyone noticed.
        if job.timeout and job.timeout > 0:
            return int(min(job.timeout - self.current_job_working_time, self.job_monitoring_interval)) + HEARTBEAT_GRACE
        return self.job_monitoring_interval + HEARTBEAT_GRACE

    def execute_job(self, job, queue):
        try:
            return super().execute_job(job, queue)
        finally:
            # Each job ran in a work horse of its own, which left its Prometheus counters in a file: fold the
            # files of horses that are gone once there are enough of them to be worth it.
            metrics.compact(minimum=metrics.COMPACT_ABOVE)

    def handle_work_horse_killed(self, job, retpid, ret_val, rusage):
        # The work horse died under the job (SIGKILL, out of memory) while this worker lived on: RQ fails the
        # job next; with a retry left it queues it again instead.
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        run_again(job, f"its work horse died ({ret_val})")

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        # A Redis restarted empty loses the chain of occurrences; registering is idempotent, so doing it
        # again on every round restores them within MAINTENANCE seconds.
        try:
            register_schedules(self.connection)
        except RedisError as error:
            log.warning("could not check the schedules: %s", error)
        metrics.compact()


def run_again(job, why: str) -> None:
    """A job whose process died under it runs again at once (a few times at most): RQ would otherwise fail
    a job without retries for good. Our jobs are safe to run again (each claims its ``job_runs`` row)."""
    runs = int(job.meta.get("abandoned", 0)) + 1
    if runs > ABANDONED_RUNS:
        log.error("job %s lost its process %d times (%s): left failed", job.id, runs, why)
        return
    job.meta["abandoned"] = runs
    job.save_meta()
    job.retries_left = max(job.retries_left or 0, 1)
    job.retry_intervals = [0]
    log.warning("job %s lost its process (%s): queued again (%d)", job.id, why, runs)


def requeue_abandoned(job, exc_type, exc_value, traceback) -> bool:
    """RQ's registry cleanup calls this for a job whose worker vanished (killed outright, machine lost)."""
    if exc_type is AbandonedJobError:
        run_again(job, "its worker vanished")
    return True


def run_rq(redis_url: str, should_stop=lambda: False) -> None:
    """An RQ worker with the scheduler that outlives Redis outages: reconnect with backoff, re-register, go on."""
    pause = 0.5
    while not should_stop():
        connection = Redis.from_url(redis_url)
        try:
            connection.ping()
            for job_id in register_schedules(connection):
                log.info("schedule ready: %s", job_id)
            pause = 0.5
            worker = PortalWorker(QUEUES, connection=connection)
            worker.work(with_scheduler=True, logging_level="INFO")
            if worker._stop_requested or worker._shutdown_requested_date is not None:
                return  # SIGTERM / SIGINT: RQ finished the job in hand
        except RedisError as error:
            log.warning("Redis unavailable (%s); trying again in %.1f s", error, pause)
        else:
            log.warning("the RQ worker stopped (Redis went away?); starting again in %.1f s", pause)
        finally:
            connection.close()
        time.sleep(pause)
        pause = min(pause * 2, RECONNECT_MAX)


def _die_with_parent() -> None:
    # Linux: the kernel sends SIGTERM to this process when the one that started it dies, even by SIGKILL.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_rq_child() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jobs.worker", "--rq"], cwd=ROOT, env=dict(os.environ),
                            preexec_fn=_die_with_parent)


def stop_child(child: Optional[subprocess.Popen]) -> None:
    if child is None or child.poll() is not None:
        return
    child.terminate()  # RQ's warm shutdown: the job in hand finishes first
    try:
        child.wait(30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="The portal's worker: applies Stripe events and runs RQ jobs.")
    parser.add_argument("--rq", action="store_true", help="only the RQ worker (started by the worker itself)")
    parser.add_argument("--events-only", action="store_true", help="only apply Stripe events (no RQ worker)")
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = portal_app()
    if args.rq:
        run_rq(app.config["REDIS_URL"])
        return

    from jobs.webhooks import Applier

    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    child: Optional[subprocess.Popen] = None
    restart_at = 0.0
    backoff = 1.0

    def supervise() -> bool:
        nonlocal child, restart_at, backoff
        if stopping:
            return True
        if not args.events_only and (child is None or child.poll() is not None) and time.monotonic() >= restart_at:
            if child is not None:
                log.warning("the RQ worker exited with %s; starting it again", child.returncode)
                backoff = min(backoff * 2, 30.0) if time.monotonic() - restart_at < 60 else 1.0
            child = start_rq_child()
            restart_at = time.monotonic() + backoff
        return stopping

    log.info("worker started: applying Stripe events%s", "" if args.events_only else "; RQ worker as a child process")
    try:
        Applier(app).run(supervise)
    finally:
        stop_child(child)


if __name__ == "__main__":
    main()

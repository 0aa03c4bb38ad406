"""The webhook pump: turns the event ids the endpoint pushed onto ``webhooks:inbox`` into RQ jobs.

The endpoint's hot path records the event and hands it over with one ``LPUSH`` of
its id; creating the RQ job (a pickled call, about twenty hash fields, six
commands) happens here, off the request. Each id is moved atomically (``BLMOVE``)
onto ``webhooks:inbox:claimed`` while its job is created and removed from there
once the job exists, so a pump killed half-way loses nothing: the next pump to
start pushes the claimed ids back. Several pumps (one per worker) may run at
once: ``BLMOVE`` gives each id to one of them.

This module is also where the processing job is defined as RQ sees it (queue,
job id, retry policy, TTLs), shared by the pump, the sweeper
(``jobs.webhooks.sweep_inbox``) and the admin's replay. It imports nothing of the
portal, so a pump starts in a fraction of a second.

    python -m jobs.webhook_pump        # alone; ``python -m jobs.worker`` also starts one as a child process
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import time
import uuid
from typing import Any, Callable, Mapping, Optional

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from jobs.queues import WEBHOOKS

log = logging.getLogger(__name__)

INBOX_KEY = "webhooks:inbox"
CLAIMED_KEY = "webhooks:inbox:claimed"
JOB = "jobs.webhooks.process_event"
# Backoff between attempts of a failing handler: 10 s, 1 min, 5 min, 30 min, 2 h. Long
# enough for Stripe to come back or a late event to arrive; after that, an alert.
RETRY_INTERVALS = (10, 60, 300, 1800, 7200)
RESULT_TTL = 60  # the row in processed_webhooks is the record; RQ keeps results briefly
FAILURE_TTL = 7 * 86400
# A job in one of these states will not run again by itself: an id that comes back gets a fresh job
# (processing is idempotent: a settled event is left as it is).
_OVER = {JobStatus.FINISHED.value, JobStatus.FAILED.value, JobStatus.STOPPED.value, JobStatus.CANCELED.value}
BLOCK_SECONDS = 1.0  # how long one BLMOVE waits; also how soon a stop request or a dead parent is noticed


def job_id(event_id: str, replay: bool = False) -> str:
    """RQ job ids derived from the event: a second enqueue of the same delivery is visible as such."""
    return f"webhook-{event_id}-replay-{uuid.uuid4().hex[:8]}" if replay else f"webhook-{event_id}"


def retry_policy(config: Optional[Mapping[str, Any]] = None) -> Retry:
    intervals = list((config or {}).get("WEBHOOK_RETRY_INTERVALS", RETRY_INTERVALS))
    return Retry(max=len(intervals), interval=intervals)


def create_job(queue: Queue, event_id: str, retry: Retry, *, replay: bool = False, pipeline=None) -> Job:
    """Queue ``jobs.webhooks.process_event(event_id)``; written to ``pipeline`` when one is given."""
    # An explicit description spares RQ building one from the call's repr.
    return queue.enqueue_call(JOB, args=(event_id,), job_id=job_id(event_id, replay), retry=retry,
                              result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL, description=f"Stripe event {event_id}",
                              pipeline=pipeline)


def ensure_job(queue: Queue, event_id: str, retry: Retry) -> bool:
    """Create the processing job of ``event_id`` unless one is already waiting or running; True when created."""
    identifier = job_id(event_id)
    connection = queue.connection
    status = connection.hget(Job.key_for(identifier), "status")
    if status is not None and status.decode() not in _OVER:
        return False
    if status is not None:
        # Its registries belong to the earlier run; start from a clean slate.
        try:
            Job.fetch(identifier, connection=connection).delete()
        except NoSuchJobError:
            pass  # it expired meanwhile
    with connection.pipeline() as pipe:
        create_job(queue, event_id, retry, pipeline=pipe)
        pipe.execute()
    return True


class Pump:
    """Moves ids from ``webhooks:inbox`` to RQ jobs, one at a time, safely alongside other pumps."""

    def __init__(self, connection: Redis, retry: Optional[Retry] = None, *, block_seconds: float = BLOCK_SECONDS):
        self.connection = connection
        self.queue = Queue(WEBHOOKS, connection=connection)
        self.retry = retry or retry_policy()
        self.block_seconds = block_seconds

    def recover(self) -> int:
        """Push back the ids a pump claimed but never finished (it died mid-way); returns how many."""
        moved = 0
        # To the right end, where the next claim is taken: they are the oldest waiting.
        while self.connection.lmove(CLAIMED_KEY, INBOX_KEY, "RIGHT", "RIGHT") is not None:
            moved += 1
        return moved

    def step(self, block: bool = True) -> Optional[str]:
        """Hand over the oldest waiting id (waiting up to ``block_seconds`` for one); None when there was none."""
        if block:
            raw = self.connection.blmove(INBOX_KEY, CLAIMED_KEY, self.block_seconds, "RIGHT", "LEFT")
        else:
            raw = self.connection.lmove(INBOX_KEY, CLAIMED_KEY, "RIGHT", "LEFT")
        if raw is None:
            return None
        event_id = raw.decode("utf-8", "replace")
        try:
            created = ensure_job(self.queue, event_id, self.retry)
        except RedisError:
            raise  # the id stays claimed; the next pump to start, or the sweeper, takes care of it
        except Exception:
            # Not an id RQ accepts (nothing the endpoint pushes): dropping it must not stop the pump.
            log.exception("could not queue a job for %r; dropped from the inbox", event_id)
            created = False
        self.connection.lrem(CLAIMED_KEY, 1, raw)
        if created:
            log.debug("queued %s", event_id)
        return event_id

    def drain(self) -> int:
        """Hand over every waiting id without blocking (tests, the benchmark); returns how many."""
        handed = 0
        while self.step(block=False) is not None:
            handed += 1
        return handed

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Hand over ids as they arrive until ``should_stop()``; Redis being away only pauses it."""
        recovered = self.recover()
        if recovered:
            log.warning("webhook pump: %d claimed ids of a pump that stopped mid-way pushed back", recovered)
        log.info("webhook pump moving %s to RQ jobs on the %s queue", INBOX_KEY, WEBHOOKS)
        pause = 0.5
        while not should_stop():
            try:
                self.step()
                pause = 0.5
            except RedisError as error:
                log.warning("webhook pump: Redis unavailable (%s); trying again in %.1f s", error, pause)
                time.sleep(pause)
                pause = min(pause * 2, 10.0)
        log.info("webhook pump stopped")


def redis_url_from_environment() -> str:
    # The worker passes its own setting; alone, the pump reads the portal's configuration (heavier to import).
    url = os.environ.get("REDIS_URL", "").strip()
    if url:
        return url
    from portal.config import load_config

    return load_config()["REDIS_URL"]


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Move Stripe event ids from webhooks:inbox to RQ jobs.")
    parser.add_argument("--parent", type=int, default=None,
                        help="exit when this process (the worker that started the pump) is gone")
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def should_stop() -> bool:
        # A worker killed with SIGKILL cannot stop its pump: the pump notices it was orphaned instead.
        return stopping or (args.parent is not None and os.getppid() != args.parent)

    Pump(Redis.from_url(redis_url_from_environment())).run(should_stop)


if __name__ == "__main__":
    main()

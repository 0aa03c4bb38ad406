"""The webhook pump: turns the event ids the endpoint pushed onto ``webhooks:inbox`` into RQ jobs.

The endpoint's hot path records the event and hands it over with one ``LPUSH`` of
its id; creating the RQ job (a pickled call, about twenty hash fields, six
commands) happens here, off the request. Each id is moved atomically onto
``webhooks:inbox:claimed`` while its job is created (``BLMOVE`` waits for one; in a
burst a short Lua script moves up to ``BATCH`` at once, so the round trips and the
MULTI/EXEC are paid per batch, not per event) and removed from there once the job
exists, so a pump killed half-way loses nothing: the next pump to start pushes the
claimed ids back. Several pumps (one per worker) may run at once: each move gives
an id to exactly one of them.

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
from datetime import timedelta
import uuid
from typing import Any, Callable, Mapping, Optional

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from billing.webhooks.events import EVENT_ID
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
BLOCK = timedelta(seconds=1)  # how long one BLMOVE waits; also how soon a stop request or a dead parent is noticed
# Ids claimed at once when several wait (a burst): a handful of round trips per batch instead of per id.
BATCH = 100
LINGER = timedelta(milliseconds=5)  # after waking for one id, how long to let others join its batch
# Moves up to ARGV[1] ids from the inbox's oldest end to the claimed list, atomically (BLMOVE moves one).
_CLAIM_MANY = """
local ids = {}
for i = 1, tonumber(ARGV[1]) do
  local id = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not id then break end
  ids[i] = id
end
return ids
"""


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


def _start_afresh(connection: Redis, identifier: str) -> None:
    # The earlier run's registries and fields would linger in a job hash written over.
    try:
        Job.fetch(identifier, connection=connection).delete()
    except NoSuchJobError:
        pass  # it expired meanwhile


def ensure_jobs(queue: Queue, event_ids: list[str], retry: Retry) -> list[str]:
    """Create the processing job of each event unless one is already waiting or running; returns those created."""
    connection = queue.connection
    with connection.pipeline(transaction=False) as pipe:
        for event_id in event_ids:
            pipe.hget(Job.key_for(job_id(event_id)), "status")
        statuses = pipe.execute()
    wanted: dict[str, None] = {}  # ordered, and an id twice in one batch gets one job
    for event_id, status in zip(event_ids, statuses):
        if status is None:
            wanted[event_id] = None
        elif status.decode() in _OVER and event_id not in wanted:
            _start_afresh(connection, job_id(event_id))
            wanted[event_id] = None
    if wanted:
        with connection.pipeline() as pipe:  # one MULTI/EXEC for the whole batch
            for event_id in wanted:
                create_job(queue, event_id, retry, pipeline=pipe)
            pipe.execute()
    return list(wanted)


class Pump:
    """Moves ids from ``webhooks:inbox`` to RQ jobs, in batches, safely alongside other pumps."""

    def __init__(self, connection: Redis, retry: Optional[Retry] = None, *, block: timedelta = BLOCK,
                 batch: int = BATCH, linger: timedelta = LINGER):
        self.connection = connection
        self.queue = Queue(WEBHOOKS, connection=connection)
        self.retry = retry or retry_policy()
        self.block_seconds = block.total_seconds()
        self.batch = batch
        self.linger_seconds = linger.total_seconds()
        self._claim_many = connection.register_script(_CLAIM_MANY)

    def recover(self) -> int:
        """Push back the ids a pump claimed but never finished (it died mid-way); returns how many."""
        moved = 0
        # To the right end, where the next claim is taken: they are the oldest waiting.
        while self.connection.lmove(CLAIMED_KEY, INBOX_KEY, "RIGHT", "RIGHT") is not None:
            moved += 1
        return moved

    def _claim(self, block: bool) -> list[bytes]:
        claimed = self._claim_many(keys=[INBOX_KEY, CLAIMED_KEY], args=[self.batch])
        if claimed or not block:
            return claimed
        # Nothing waiting: sleep in Redis until an id arrives (or block_seconds pass).
        first = self.connection.blmove(INBOX_KEY, CLAIMED_KEY, self.block_seconds, "RIGHT", "LEFT")
        if first is None:
            return []
        # Let the ids arriving right behind it join its batch: at hundreds of events a second this turns
        # a batch per event into one per few, for a few milliseconds' delay before processing.
        time.sleep(self.linger_seconds)
        return [first, *self._claim_many(keys=[INBOX_KEY, CLAIMED_KEY], args=[self.batch - 1])]

    def step(self, block: bool = True) -> list[str]:
        """Hand over the oldest waiting ids (up to ``batch``; waiting up to ``block_seconds`` for one when there is
        none and ``block``); returns the ids handed over."""
        claimed = self._claim(block)
        if not claimed:
            return []
        event_ids = [raw.decode("utf-8", "replace") for raw in claimed]
        valid = [event_id for event_id in event_ids if EVENT_ID.fullmatch(event_id)]
        if len(valid) < len(event_ids):
            # Nothing the endpoint pushes; dropped so that it never blocks the pump.
            log.error("dropped from the inbox, not Stripe event ids: %r", sorted(set(event_ids) - set(valid)))
        # A RedisError from here on leaves the ids claimed: the next pump to start, or the sweeper, queues them.
        created = ensure_jobs(self.queue, valid, self.retry)
        with self.connection.pipeline(transaction=False) as pipe:
            for raw in claimed:
                pipe.lrem(CLAIMED_KEY, 1, raw)
            pipe.execute()
        log.debug("queued %d of %d handed-off events", len(created), len(claimed))
        return event_ids

    def drain(self) -> int:
        """Hand over every waiting id without blocking (tests, the benchmark); returns how many."""
        handed = 0
        while batch := self.step(block=False):
            handed += len(batch)
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

"""Handing a recorded event to the ``webhooks`` queue, in one Redis round trip.

``portal.queue.enqueue`` is the general helper (used here when jobs run inline, in
tests); the asynchronous path sits on the webhook
endpoint's hot path, so it keeps one ``Queue`` per process (RQ asks the Redis
version once per Queue object) and writes the job and its queue entry in a single
pipeline (MULTI/EXEC) instead of three separate commands.
"""
from __future__ import annotations

import threading
import uuid
from typing import Any, Mapping, Optional

from flask import current_app
from rq import Queue, Retry
from rq.job import Job

from jobs.queues import WEBHOOKS, get_queue
from portal.queue import enqueue

JOB = "jobs.webhooks.process_event"
# Backoff between attempts of a failing handler: 10 s, 1 min, 5 min, 30 min, 2 h. Long
# enough for Stripe to come back or a late event to arrive; after that, an alert.
RETRY_INTERVALS = (10, 60, 300, 1800, 7200)
RESULT_TTL = 60  # the row in processed_webhooks is the record; RQ keeps results briefly
FAILURE_TTL = 7 * 86400

_queues: dict[str, Queue] = {}
_lock = threading.Lock()


def job_id(event_id: str, replay: bool = False) -> str:
    """RQ job ids derived from the event: a second enqueue of the same delivery is visible as such."""
    return f"webhook-{event_id}-replay-{uuid.uuid4().hex[:8]}" if replay else f"webhook-{event_id}"


def retry_policy(config: Mapping[str, Any]) -> Retry:
    intervals = list(config.get("WEBHOOK_RETRY_INTERVALS", RETRY_INTERVALS))
    return Retry(max=len(intervals), interval=intervals)


def _queue(redis_url: str) -> Queue:
    queue = _queues.get(redis_url)
    if queue is None:
        with _lock:
            queue = _queues.setdefault(redis_url, get_queue(WEBHOOKS, redis_url))
    return queue


def enqueue_processing(event_id: str, *, replay: bool = False) -> Optional[Job]:
    """Queue the processing of ``event_id`` (run at once, in-process, when RQ_ASYNC is off)."""
    config = current_app.config
    retry = retry_policy(config)
    identifier = job_id(event_id, replay)
    if not config["RQ_ASYNC"]:
        return enqueue(JOB, event_id, queue=WEBHOOKS, job_id=identifier, retry=retry)  # runs now, in-process
    queue = _queue(config["REDIS_URL"])
    with queue.connection.pipeline() as pipe:
        # An explicit description spares RQ building one from the call's repr on every delivery.
        job = queue.enqueue_call(JOB, args=(event_id,), job_id=identifier, retry=retry, result_ttl=RESULT_TTL,
                                 failure_ttl=FAILURE_TTL, description=f"Stripe event {event_id}", pipeline=pipe)
        pipe.execute()
    return job

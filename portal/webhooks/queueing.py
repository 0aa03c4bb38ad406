"""Handing a recorded event over for processing.

On the endpoint's hot path (``RQ_ASYNC`` on) the hand-off is one ``LPUSH`` of the
event id onto ``webhooks:inbox``; the pump (``jobs/webhook_pump.py``) turns ids into
RQ jobs off the request. Where speed does not matter (the admin's replay, and tests
with ``RQ_ASYNC`` off, where the job runs at once in-process) the RQ job is created
here directly, the same job the pump would create.
"""
from __future__ import annotations

from typing import Optional

from flask import current_app
from redis import Redis
from rq.job import Job

from jobs.queues import WEBHOOKS, get_queue
from jobs.webhook_pump import INBOX_KEY, JOB, create_job, job_id, retry_policy
from portal.queue import enqueue


def hand_off(connection: Redis, event_id: str) -> None:
    """Put ``event_id`` in line for the pump: one Redis round trip."""
    connection.lpush(INBOX_KEY, event_id)


def enqueue_processing(event_id: str, *, replay: bool = False) -> Optional[Job]:
    """Queue the processing of ``event_id`` as an RQ job (run at once, in-process, when RQ_ASYNC is off)."""
    config = current_app.config
    retry = retry_policy(config)
    if not config["RQ_ASYNC"]:
        return enqueue(JOB, event_id, queue=WEBHOOKS, job_id=job_id(event_id, replay), retry=retry)  # runs now
    return create_job(get_queue(WEBHOOKS, config["REDIS_URL"]), event_id, retry, replay=replay)

"""Handing work to RQ from a request.

Jobs are named by dotted path ("jobs.dunning.run_now") rather than imported: the job
modules import the portal to build their app context, so the portal imports nothing
of ``jobs`` but ``jobs.queues`` (names and connections, which import nothing of ours;
``tests/test_layers.py`` holds both rules).
"""
from __future__ import annotations

from typing import Any, Optional

from flask import current_app
from rq import Retry
from rq.job import Job

from billing.webhooks import correlation
from jobs.queues import DEFAULT, get_queue


def enqueue(func: str, *args: Any, queue: str = DEFAULT, job_id: Optional[str] = None,
            retry: Optional[Retry] = None, timeout: Optional[int] = None, **kwargs: Any) -> Job:
    """Enqueue ``func(*args, **kwargs)``; with RQ_ASYNC off (tests) it runs at once, in this process."""
    rq_queue = get_queue(queue, current_app.config["REDIS_URL"], is_async=current_app.config["RQ_ASYNC"])
    # The job's log lines carry the correlation id of the request that asked for it (jobs/context.py).
    meta = {"correlation_id": correlation.current()} if correlation.current() else None
    return rq_queue.enqueue_call(func, args=args, kwargs=kwargs, job_id=job_id, retry=retry, timeout=timeout,
                                 meta=meta)

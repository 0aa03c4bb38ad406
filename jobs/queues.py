"""Queue names and how to reach them."""
from __future__ import annotations

from redis import Redis
from rq import Queue

WEBHOOKS = "webhooks"
DEFAULT = "default"
# Webhooks first: Stripe's events are what keep subscriptions true.
QUEUES = [WEBHOOKS, DEFAULT]


def get_queue(name: str, redis_url: str, is_async: bool = True) -> Queue:
    return Queue(name, connection=Redis.from_url(redis_url), is_async=is_async)

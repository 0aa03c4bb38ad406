"""Queue names and how to reach them."""
from __future__ import annotations

from redis import Redis
from rq import Queue

WEBHOOKS = "webhooks"
DEFAULT = "default"
# Webhooks first: Stripe's events are what keep subscriptions true.
QUEUES = [WEBHOOKS, DEFAULT]


_connections: dict[str, Redis] = {}


def redis_connection(redis_url: str) -> Redis:
    """One connection pool per Redis URL and process, not one per enqueue."""
    if redis_url not in _connections:
        _connections[redis_url] = Redis.from_url(redis_url)
    return _connections[redis_url]


def get_queue(name: str, redis_url: str, is_async: bool = True) -> Queue:
    return Queue(name, connection=redis_connection(redis_url), is_async=is_async)

"""The webhook endpoint's rate limit: a fixed-window counter per sending address in Redis.

One round trip per delivery (``INCR`` of the current window's key, and ``EXPIRE NX``
so the key disappears after its window), instead of Flask-Limiter's two checks. The
two commands travel as one short Lua script (``EVALSHA``) rather than a two-command
pipeline: the same single round trip, atomic, and less client CPU (building a redis-py
pipeline costs more than the commands in it; figures in docs/benchmarks.md). The limit is written as
Flask-Limiter writes it (``WEBHOOK_RATE_LIMIT``, e.g. "6000 per minute", parsed by the
same ``limits`` library). The limiter fails open: when Redis cannot be reached the delivery goes on (and the failure is logged),
because a counter being down is never a reason to refuse a signed event.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

from limits import parse_many
from redis import Redis
from redis.commands.core import Script
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

KEY = "webhooks:rate:{address}:{seconds}:{window}"
# KEYS: one counter per window; ARGV: each window's length in seconds. Returns the counts.
_COUNT = Script(None, b"""
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[i], 'NX')
end
return counts
""")


@dataclass(frozen=True)
class Window:
    amount: int
    seconds: int


@lru_cache(maxsize=16)
def windows(limit: str) -> tuple[Window, ...]:
    """``"6000 per minute"`` (or several, ``;``-separated) as windows; raises ValueError when unparsable."""
    return tuple(Window(item.amount, item.get_expiry()) for item in parse_many(limit))


@dataclass(frozen=True)
class Refusal:
    """Over the limit: the limit in words, and how long until the window ends."""

    limit: str
    retry_after: int


def check(connection: Redis, address: str, limit: str, now: Optional[float] = None) -> Optional[Refusal]:
    """Count one delivery from ``address``; a ``Refusal`` when it is over ``limit``, else None."""
    now = time.time() if now is None else now
    rules = windows(limit)
    keys = [KEY.format(address=address, seconds=rule.seconds, window=int(now // rule.seconds)) for rule in rules]
    try:
        counts = _COUNT(keys=keys, args=[rule.seconds for rule in rules], client=connection)
    except RedisError as error:
        log.warning("webhook rate limit not checked, Redis unavailable (%s): delivery let through", error)
        return None
    for rule, count in zip(rules, counts):
        if count > rule.amount:
            return Refusal(limit, max(1, rule.seconds - int(now % rule.seconds)))
    return None

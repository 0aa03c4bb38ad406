"""Stripe-looking identifiers that sort in creation order.

Stripe's newer ids start with a time-derived prefix; ours do too, so that
ordering lists by ``(created DESC, id DESC)`` keeps objects created within the
same second in the order they were made (events above all).
"""

from __future__ import annotations

import os
import secrets
import threading
import time

# ASCII order of this alphabet equals its numeric order, so ids compare like numbers.
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SEQ_WIDTH = 10  # 62**10 microseconds is far beyond any wall clock we will meet

# Maps every byte to a character of the alphabet (the slight bias is irrelevant for ids),
# so random parts come from one C-level translate instead of a Python loop.
_BYTE_TO_CHAR = bytes(ord(ALPHABET[i % 62]) for i in range(256))

_lock = threading.Lock()
_last = 0


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        chars.append(ALPHABET[rest])
    return "".join(reversed(chars))


def _next_sequence() -> int:
    """Wall microseconds, forced strictly increasing within the process."""
    global _last
    with _lock:
        value = max(time.time_ns() // 1000, _last + 1)
        _last = value
        return value


def new_id(prefix: str, random_chars: int = 14) -> str:
    """Return ``<prefix>_<time-ordered part><random part>``, e.g. ``cus_0Q3x...``."""
    random_part = os.urandom(random_chars).translate(_BYTE_TO_CHAR).decode()
    return f"{prefix}_{_base62(_next_sequence(), _SEQ_WIDTH)}{random_part}"


def random_token(length: int = 24) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))  # secrets: these are client secrets

"""The one clock every billing rule and job reads "now" from.

Production reads the system clock. Tests replace it with a movable clock, and in
sandbox mode the portal follows the sandbox's test clock so that a month of
renewals and dunning can run in seconds and both sides agree on the date.
"""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Callable, Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class MovableClock:
    """A clock that starts at the system time (or a given moment) and can be moved forward."""

    def __init__(self, start: datetime | None = None):
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._frozen = start

    def now(self) -> datetime:
        with self._lock:
            base = self._frozen or datetime.now(timezone.utc)
            return base + self._offset

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += delta
        return self.now()


class ExternalClock:
    """Reads the time from a source such as the sandbox's test clock.

    Falls back to the system clock when the source cannot be reached, so pages
    still render while the sandbox is down (every payment call fails anyway).
    """

    def __init__(self, read: Callable[[], datetime]):
        self._read = read

    def now(self) -> datetime:
        try:
            return self._read()
        except Exception:  # the source is a convenience, never a reason to fail
            return datetime.now(timezone.utc)


_current: Clock = SystemClock()


def now() -> datetime:
    return _current.now()


def use(clock: Clock) -> Clock:
    """Install ``clock`` as the process-wide clock; returns the previous one."""
    global _current
    previous, _current = _current, clock
    return previous


def current() -> Clock:
    return _current

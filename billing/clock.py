"""The one clock every billing rule and job reads "now" from.

Production reads the system clock. Tests replace it with a movable clock. With a
Stripe test clock configured (``STRIPE_TEST_CLOCK``, test mode, against Stripe or the
sandbox alike) the portal follows that clock, so that a month of renewals and dunning
can run in seconds and both sides agree on the date.
"""
from __future__ import annotations

import threading
import time as _time
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable, Protocol
from zoneinfo import ZoneInfo

# Where the kernel's customers live: "day 3" of dunning, a job's 09:00 and a day's totals are
# calendar days here, not 24-hour spans from UTC midnight.
BUSINESS_TIMEZONE = ZoneInfo("America/Sao_Paulo")


def business_date(moment: datetime) -> date:
    """The calendar day in São Paulo at ``moment``."""
    return moment.astimezone(BUSINESS_TIMEZONE).date()


def business_day_start(day: date) -> datetime:
    """00:00 of ``day`` in São Paulo, as an aware instant."""
    return datetime.combine(day, time(0), tzinfo=BUSINESS_TIMEZONE)


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
    """Follows another clock: a Stripe test clock, whose time is frozen until it is advanced.

    The source is read again after ``ttl`` or on ``refresh()`` (jobs and billing actions call
    it first), so stamping a row does not cost a request. Between readings the time stays
    where the source said (a test clock does not tick), and it never moves backwards. When
    the source cannot be reached the last reading stays: pages still render while it is down.
    """

    def __init__(self, read: Callable[[], datetime], ttl: timedelta = timedelta(seconds=1)):
        self._read = read
        self._ttl_ns = int(ttl.total_seconds() * 1_000_000_000)
        self._lock = threading.Lock()
        self._last: datetime | None = None
        self._read_at_ns: int | None = None  # _time.monotonic_ns() of the last read

    def refresh(self) -> None:
        try:
            source = self._read()
        except Exception:  # the source is a convenience, never a reason to fail
            return
        with self._lock:
            self._last = source if self._last is None else max(self._last, source)
            self._read_at_ns = _time.monotonic_ns()

    def now(self) -> datetime:
        if self._read_at_ns is None or _time.monotonic_ns() - self._read_at_ns > self._ttl_ns:
            self.refresh()
        with self._lock:
            return self._last if self._last is not None else datetime.now(timezone.utc)


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


def refresh() -> None:
    """Re-read a clock that follows another source; a no-op for the others."""
    refresh_method = getattr(_current, "refresh", None)
    if refresh_method:
        refresh_method()

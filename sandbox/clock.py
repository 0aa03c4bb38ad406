"""Sandbox time and calendar arithmetic for billing periods.

Time works as in Stripe's test mode: an object on no test clock lives in wall time; a
customer created with ``test_clock`` and everything made for it (subscriptions, invoices,
schedules, invoice items) live in that clock's ``frozen_time``, which moves only when the
clock is advanced. A request about such objects runs at its clock's time (``time_for``).

Billing periods follow Stripe's billing-cycle anchor rule: the n-th period of a
monthly price starts ``n`` calendar months after the anchor, on the anchor's day
of month, clamped to the month's last day (an anchor on the 31st bills on
30 April and 28/29 February, then on the 31st again). So a subscription started
on 2026-11-01 has a 30-day first period, one started on 2026-12-01 a 31-day one.
"""

from __future__ import annotations

import calendar
import time
from datetime import datetime, timezone
from typing import Any, Iterable

from .store import Db

DAY = 86400
CLOCK_OBJECT = "test_helpers.test_clock"


def wall_now() -> int:
    return int(time.time())


def load_clock(db: Db, clock_id: str | None) -> dict[str, Any] | None:
    obj = db.get(clock_id) if clock_id else None
    return obj if obj and obj.get("object") == CLOCK_OBJECT else None


def clock_of(db: Db, obj: dict[str, Any] | None, depth: int = 0) -> str | None:
    """The test clock an object lives on: its own ``test_clock``, or its customer's, or its parent's."""
    if not obj or depth > 3:
        return None
    if obj.get("object") == CLOCK_OBJECT:
        return obj["id"]
    if isinstance(obj.get("test_clock"), str):
        return obj["test_clock"]
    if obj.get("object") == "customer":
        return None
    for key in ("customer", "subscription", "invoice", "payment_intent", "charge"):
        ref = obj.get(key)
        if isinstance(ref, dict):
            ref = ref.get("id")
        if isinstance(ref, str):
            return clock_of(db, db.get(ref), depth + 1)
    return None


def time_for(db: Db, subjects: Iterable[str | None] = (), clock_id: str | None = None) -> int:
    """The time a request runs at: the frozen time of the clock its objects live on, else wall time."""
    if clock_id is None:
        for subject in subjects:
            if subject and isinstance(subject, str):
                clock_id = clock_of(db, db.get(subject))
                if clock_id:
                    break
    clock = load_clock(db, clock_id)
    return int(clock["frozen_time"]) if clock else wall_now()


def add_months(timestamp: int, months: int) -> int:
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def add_interval(anchor: int, interval: str, count: int) -> int:
    if interval == "month":
        return add_months(anchor, count)
    if interval == "year":
        return add_months(anchor, 12 * count)
    if interval == "week":
        return anchor + 7 * DAY * count
    if interval == "day":
        return anchor + DAY * count
    raise ValueError(f"unknown interval {interval!r}")


def period_end_after(anchor: int, moment: int, interval: str, interval_count: int) -> int:
    """The first period boundary (anchor + k intervals, k >= 1) strictly after ``moment``."""
    if interval in ("week", "day"):
        step = (7 if interval == "week" else 1) * DAY * interval_count
        periods = max(1, (moment - anchor) // step + 1)
        return anchor + periods * step
    months_per = interval_count * (12 if interval == "year" else 1)
    start = datetime.fromtimestamp(anchor, tz=timezone.utc)
    here = datetime.fromtimestamp(moment, tz=timezone.utc)
    k = max(1, ((here.year - start.year) * 12 + here.month - start.month) // months_per - 1)
    while add_months(anchor, k * months_per) <= moment:
        k += 1
    return add_months(anchor, k * months_per)


def iso_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d")


def human_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%-d %b %Y")

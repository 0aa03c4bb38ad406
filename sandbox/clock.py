"""Sandbox time and calendar arithmetic for billing periods.

Sandbox time is wall time plus an offset kept in the database; the test clock
endpoint only ever moves the offset forward.

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

from .store import Db

DAY = 86400
OFFSET_KEY = "clock_offset"


def wall_now() -> int:
    return int(time.time())


def offset(db: Db) -> int:
    return int(db.meta(OFFSET_KEY, "0") or 0)


def sandbox_now(db: Db) -> int:
    return wall_now() + offset(db)


def move_to(db: Db, target: int) -> None:
    db.set_meta(OFFSET_KEY, str(target - wall_now()))


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

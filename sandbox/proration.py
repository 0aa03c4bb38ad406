"""Proration to the second, in integers only.

Stripe's rule: for a change at ``t`` inside the period ``[start, end)``, the
unused part of the old price is credited and the rest of the period at the new
price is charged, each ``amount * (end - t) / (end - start)`` rounded to the
minor unit, half away from zero.
"""

from __future__ import annotations


def prorate(amount: int, remaining: int, length: int) -> int:
    """``round(amount * remaining / length)``, half away from zero, without floats."""
    if length <= 0:
        raise ValueError("period length must be positive")
    if not 0 <= remaining <= length:
        raise ValueError("remaining time must lie within the period")
    magnitude = (2 * abs(amount) * remaining + length) // (2 * length)
    return magnitude if amount >= 0 else -magnitude


def proration_pair(old_amount: int, new_amount: int, start: int, end: int, at: int) -> tuple[int, int]:
    """(credit for unused old time — negative, charge for remaining new time)."""
    length = end - start
    remaining = end - at
    return -prorate(old_amount, remaining, length), prorate(new_amount, remaining, length)

"""Proration of a mid-period price change, the way Stripe computes it.

Stripe prorates to the second. A change at time ``t`` inside the period ``[s, e)``
produces two invoice lines, each rounded to the minor unit on its own:

* a credit for the unused time of the old price:  ``-round(old * (e - t) / (e - s))``
* a charge for the rest of the period at the new price: ``+round(new * (e - t) / (e - s))``

Rounding is half away from zero, done in integers so no float ever touches money.
The reference case: Pro 9900 -> Enterprise 49900 BRL with 15 of 30 days left gives
-4950 + 24950 = 20000 (R$ 200,00) charged now.

The same ``proration_date`` must be sent to Stripe's preview and to the change itself,
so that what the owner is shown is what is charged.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing.errors import BillingError
from billing.money import Money


class ProrationError(BillingError, ValueError):
    """The change time lies outside the period, or the prices cannot be combined."""


def round_share(amount: int, numerator: int, denominator: int) -> int:
    """``amount * numerator / denominator`` rounded half away from zero, in integers."""
    if denominator <= 0:
        raise ProrationError("the period has no length")
    sign = -1 if amount < 0 else 1
    magnitude = abs(amount) * numerator
    return sign * ((2 * magnitude + denominator) // (2 * denominator))


@dataclass(frozen=True)
class Proration:
    credit: Money  # negative: unused time on the old price
    charge: Money  # positive: remaining time on the new price
    proration_date: int  # unix seconds, to send to the gateway unchanged
    seconds_remaining: int
    period_seconds: int

    @property
    def total(self) -> Money:
        return self.credit + self.charge


def prorate(
    old_price: Money,
    new_price: Money,
    period_start: datetime,
    period_end: datetime,
    at: datetime,
) -> Proration:
    """What changing from ``old_price`` to ``new_price`` at ``at`` costs within the current period."""
    if old_price.currency != new_price.currency:
        raise ProrationError("prices in different currencies cannot be prorated")
    start, end, when = _seconds(period_start), _seconds(period_end), _seconds(at)
    if not start <= when < end:
        raise ProrationError("the change time lies outside the current period")
    remaining, length = end - when, end - start
    credit = -round_share(old_price.amount, remaining, length)
    charge = round_share(new_price.amount, remaining, length)
    return Proration(
        credit=Money(credit, old_price.currency),
        charge=Money(charge, new_price.currency),
        proration_date=when,
        seconds_remaining=remaining,
        period_seconds=length,
    )


def _seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ProrationError("naive datetime: pass timezone-aware UTC")
    # Stripe works in whole seconds; truncating here is what makes preview and charge agree.
    return int(moment.timestamp())

"""The money at a glance: MRR per currency, churn and payment outcomes, now and as hourly snapshots.

The same functions feed the snapshots (``jobs/snapshots.py``), the scrape-time
gauges of ``/metrics`` and the alert rules, so a chart, a gauge and an alert never
disagree on what MRR or churn is. Definitions: ``docs/metrics.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from billing.clock import business_date
from billing.db import insert_once
from billing.models import AppSubscription, KernelPlan, MrrSnapshot, PaymentOutcome
from billing.states import SubscriptionStatus
from billing.subscriptions import MRR_STATUSES, monthly_amount_sql

CHURN_WINDOW = timedelta(days=30)
PAYMENT_WINDOW = timedelta(hours=24)
SNAPSHOT_EVERY = timedelta(hours=1)
# A subscription whose first payment never went through was never a customer's: it cannot churn.
NEVER_LIVE = (SubscriptionStatus.INCOMPLETE, SubscriptionStatus.INCOMPLETE_EXPIRED)


@dataclass(frozen=True)
class Figures:
    """One currency's figures at one moment; counts only, rates are derived."""

    currency: str
    mrr: int = 0
    active_count: int = 0
    churn_base: int = 0
    churned_count: int = 0
    payments_succeeded: int = 0
    payments_failed: int = 0

    @property
    def churn_rate(self) -> Optional[float]:
        return self.churned_count / self.churn_base if self.churn_base else None

    @property
    def failure_rate(self) -> Optional[float]:
        attempts = self.payments_succeeded + self.payments_failed
        return self.payments_failed / attempts if attempts else None


def mrr_by_currency(session: Session) -> dict[str, tuple[int, int]]:
    """{currency: (MRR in minor units, subscriptions counted)} over paying subscriptions."""
    rows = session.execute(
        select(KernelPlan.currency, func.coalesce(func.sum(monthly_amount_sql(KernelPlan)), 0),
               func.count(AppSubscription.id))
        .join(KernelPlan, KernelPlan.id == AppSubscription.plan_id)
        .where(AppSubscription.status.in_(MRR_STATUSES))
        .group_by(KernelPlan.currency))
    return {currency: (int(mrr), int(count)) for currency, mrr, count in rows}


def _ended_at():
    """When a canceled subscription stopped: its period end when canceled at the period end, else Stripe's
    ``canceled_at`` (which, for a cancellation at the period end, is when it was requested)."""
    sub = AppSubscription
    at_period_end = and_(sub.cancel_at_period_end.is_(True), sub.current_period_end.is_not(None),
                         sub.canceled_at.is_not(None), sub.current_period_end > sub.canceled_at)
    return case((at_period_end, sub.current_period_end), else_=func.coalesce(sub.canceled_at, sub.updated_at))


def churn_by_currency(session: Session, now: datetime) -> dict[str, tuple[int, int]]:
    """{currency: (live at the window's start, of those ended within the window)} for the 30 days before ``now``."""
    start = now - CHURN_WINDOW
    sub = AppSubscription
    ended_at = _ended_at()
    canceled = sub.status == SubscriptionStatus.CANCELED
    live_at_start = and_(sub.created_at <= start, sub.status.not_in(NEVER_LIVE), or_(~canceled, ended_at > start))
    churned = and_(canceled, ended_at <= now)
    rows = session.execute(
        select(KernelPlan.currency, func.count(sub.id), func.coalesce(func.sum(case((churned, 1), else_=0)), 0))
        .join(KernelPlan, KernelPlan.id == sub.plan_id).where(live_at_start).group_by(KernelPlan.currency))
    return {currency: (int(base), int(ended)) for currency, base, ended in rows}


def payments_by_currency(session: Session, since: datetime, until: datetime) -> dict[str, tuple[int, int]]:
    """{currency: (succeeded, failed)} payment attempts in (since, until]."""
    rows = session.execute(
        select(PaymentOutcome.currency, PaymentOutcome.outcome, func.count(PaymentOutcome.id))
        .where(PaymentOutcome.occurred_at > since, PaymentOutcome.occurred_at <= until)
        .group_by(PaymentOutcome.currency, PaymentOutcome.outcome))
    result: dict[str, tuple[int, int]] = {}
    for currency, outcome, count in rows:
        succeeded, failed = result.get(currency, (0, 0))
        result[currency] = (succeeded + count, failed) if outcome == "succeeded" else (succeeded, failed + count)
    return result


def current_figures(session: Session, now: datetime) -> dict[str, Figures]:
    """Every currency's figures at ``now`` (currencies of the plans on sale, plus any with data)."""
    mrr = mrr_by_currency(session)
    churn = churn_by_currency(session, now)
    payments = payments_by_currency(session, now - PAYMENT_WINDOW, now)
    currencies = {*session.scalars(select(KernelPlan.currency).where(KernelPlan.active.is_(True))), *mrr, *churn,
                  *payments}
    return {currency: Figures(currency, *mrr.get(currency, (0, 0)), *churn.get(currency, (0, 0)),
                              *payments.get(currency, (0, 0)))
            for currency in sorted(currencies)}


def hour_slot(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def take_snapshot(session: Session, now: datetime) -> list[MrrSnapshot]:
    """Store the figures of ``now``'s hour once per currency (a second run of the hour keeps the first);
    returns the rows of that hour. The caller commits."""
    slot = hour_slot(now)
    for figures in current_figures(session, now).values():
        row = MrrSnapshot(taken_at=slot, day=business_date(slot), currency=figures.currency, mrr=figures.mrr,
                          active_count=figures.active_count, churn_base=figures.churn_base,
                          churned_count=figures.churned_count, payments_succeeded=figures.payments_succeeded,
                          payments_failed=figures.payments_failed)
        insert_once(session, row)  # False: this hour was taken already (a second worker, a rerun)
    return list(session.scalars(select(MrrSnapshot).where(MrrSnapshot.taken_at == slot)
                                .order_by(MrrSnapshot.currency)))


def snapshot_before(session: Session, currency: str, moment: datetime) -> Optional[MrrSnapshot]:
    """The newest snapshot of ``currency`` taken at or before ``moment``."""
    return session.scalar(select(MrrSnapshot).where(MrrSnapshot.currency == currency,
                                                    MrrSnapshot.taken_at <= moment)
                          .order_by(MrrSnapshot.taken_at.desc()).limit(1))


def daily_series(session: Session, currency: str, since: date, until: Optional[date] = None) -> list[MrrSnapshot]:
    """The last snapshot of each São Paulo day from ``since`` (to ``until``), oldest first: what charts plot."""
    last = (select(func.max(MrrSnapshot.taken_at)).where(MrrSnapshot.currency == currency, MrrSnapshot.day >= since)
            .group_by(MrrSnapshot.day))
    if until is not None:
        last = last.where(MrrSnapshot.day <= until)
    return list(session.scalars(select(MrrSnapshot).where(MrrSnapshot.currency == currency,
                                                          MrrSnapshot.taken_at.in_(last))
                                .order_by(MrrSnapshot.taken_at)))

"""MRR, churn and payment figures on planted data; hourly snapshots taken once; the daily series charts read."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from billing.models import MrrSnapshot
from billing.snapshots import current_figures, daily_series, snapshot_before, take_snapshot
from billing.states import SubscriptionStatus as S
from jobs import snapshots as snapshot_job
from portal.extensions import db
from tests.ops import planting
from tests.ops.planting import DAY

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=timezone.utc)


def test_mrr_counts_paying_subscriptions_at_their_monthly_price(app, backend):
    with app.app_context():
        long_ago = NOW - 90 * DAY
        planting.subscription(db.session, S.ACTIVE, plan_code="pro", created_at=long_ago)
        planting.subscription(db.session, S.PAST_DUE, plan_code="enterprise", created_at=long_ago)
        planting.subscription(db.session, S.TRIALING, plan_code="pro", created_at=long_ago)  # not paying yet
        planting.subscription(db.session, S.CANCELED, plan_code="enterprise", created_at=long_ago,
                              canceled_at=NOW - 2 * DAY)
        planting.subscription(db.session, S.INCOMPLETE, plan_code="pro", created_at=NOW - DAY)
        figures = current_figures(db.session, NOW)["BRL"]
        assert (figures.mrr, figures.active_count) == (9900 + 49900, 2)


def test_churn_is_canceled_within_30_days_over_live_at_its_start(app, backend):
    """docs/metrics.md: of the subscriptions live 30 days ago, the share that ended since."""
    with app.app_context():
        start = NOW - 30 * DAY
        for _ in range(6):  # live all along
            planting.subscription(db.session, S.ACTIVE, created_at=start - 10 * DAY)
        planting.subscription(db.session, S.CANCELED, created_at=start - 10 * DAY, canceled_at=NOW - 3 * DAY)
        # canceled at the period end: requested before the window, ended inside it
        planting.subscription(db.session, S.CANCELED, created_at=start - 40 * DAY, canceled_at=start - 5 * DAY,
                              cancel_at_period_end=True, period_end=NOW - 10 * DAY)
        # not in the base: ended before the window, born inside it, or never paid
        planting.subscription(db.session, S.CANCELED, created_at=start - 40 * DAY, canceled_at=start - DAY)
        planting.subscription(db.session, S.CANCELED, created_at=NOW - 5 * DAY, canceled_at=NOW - DAY)
        planting.subscription(db.session, S.INCOMPLETE_EXPIRED, created_at=start - 5 * DAY)
        figures = current_figures(db.session, NOW)["BRL"]
        assert (figures.churned_count, figures.churn_base) == (2, 8)
        assert figures.churn_rate == pytest.approx(0.25)


def test_payment_figures_count_the_last_24_hours(app):
    with app.app_context():
        payer = planting.any_app(db.session)
        for hours in (1, 2, 3):
            planting.outcome(db.session, payer.id, "succeeded", NOW - timedelta(hours=hours))
        planting.outcome(db.session, payer.id, "failed", NOW - timedelta(hours=5), reason="card_declined")
        planting.outcome(db.session, payer.id, "failed", NOW - timedelta(hours=30), reason="card_declined")  # too old
        figures = current_figures(db.session, NOW)["BRL"]
        assert (figures.payments_succeeded, figures.payments_failed) == (3, 1)
        assert figures.failure_rate == pytest.approx(0.25)


def test_a_snapshot_is_taken_once_per_hour_and_charts_read_each_days_last(app, backend):
    with app.app_context():
        planting.subscription(db.session, S.ACTIVE, created_at=NOW - 90 * DAY)
        first = take_snapshot(db.session, NOW)
        db.session.commit()
        assert [(row.currency, row.mrr, row.taken_at) for row in first] == [
            ("BRL", 9900, NOW.replace(minute=0))]
        planting.subscription(db.session, S.ACTIVE, plan_code="enterprise", created_at=NOW - 90 * DAY)
        again = take_snapshot(db.session, NOW + timedelta(minutes=20))  # same hour: the first one stays
        db.session.commit()
        assert [row.mrr for row in again] == [9900]
        take_snapshot(db.session, NOW + timedelta(hours=1))
        take_snapshot(db.session, NOW + DAY)
        db.session.commit()
        assert db.session.scalar(select(func.count(MrrSnapshot.id))) == 3
        series = daily_series(db.session, "BRL", (NOW - DAY).date())
        assert [(row.day.isoformat(), row.mrr) for row in series] == [("2026-11-20", 59800), ("2026-11-21", 59800)]
        assert snapshot_before(db.session, "BRL", NOW + timedelta(minutes=29)).mrr == 9900


def test_the_hourly_job_stores_the_figures(app):
    with app.app_context():
        planting.subscription(db.session, S.ACTIVE, plan_code="enterprise", created_at=NOW - 90 * DAY)
        db.session.commit()
    assert snapshot_job.take_hourly() == {"BRL": 49900}
    with app.app_context():
        assert db.session.scalar(select(MrrSnapshot.mrr)) == 49900

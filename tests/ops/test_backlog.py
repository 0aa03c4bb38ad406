"""One definition of the webhook backlog: the metrics, the alert rules, Admin → Stripe events and the benchmark
count the same planted rows the same way (received and failed-with-a-retry wait; failed for good waits for a
replay; processed and ignored are done)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bench.processing import waiting_above
from billing import alert_rules
from billing.alert_rules import evaluate
from billing.models import Alert, ProcessedWebhook, WebhookStatus
from billing.webhooks.backlog import backlog
from portal.extensions import db
from tests.ops.test_metrics import samples

# (status, seconds since received, retry to come): one row of each kind, the oldest of them not waiting at all.
PLANTED = [
    (WebhookStatus.PROCESSED, 900, False),
    (WebhookStatus.IGNORED, 800, False),
    (WebhookStatus.FAILED, 700, False),  # no retry left: waits for a replay, not for a worker
    (WebhookStatus.FAILED, 600, True),  # its retry is due later: a worker will take it
    (WebhookStatus.RECEIVED, 30, False),
]


@pytest.fixture
def planted(app):
    wall = datetime.now(timezone.utc)
    with app.app_context():
        for n, (status, age, retry) in enumerate(PLANTED):
            db.session.add(ProcessedWebhook(
                event_id=f"evt_backlog{n}", type="invoice.paid", created=0, livemode=False, payload="{}",
                status=status, attempts=1 if status == WebhookStatus.FAILED else 0,
                received_at=wall - timedelta(seconds=age),
                next_attempt_at=wall + timedelta(minutes=5) if retry else None,
                processed_at=wall - timedelta(seconds=age - 1) if status in (WebhookStatus.PROCESSED,
                                                                             WebhookStatus.IGNORED) else None))
        db.session.commit()
    return wall


def test_the_definition_counts_received_and_retrying_events_and_the_oldest_of_them(backend, app, planted):
    with app.app_context():
        figures = backlog(db.session, planted)
    assert (figures.waiting, figures.retrying, figures.failed_final, figures.retry_queue) == (2, 1, 1, 2)
    assert figures.oldest_age == pytest.approx(600, abs=1)  # the retrying one, not the failed-for-good one


def test_metrics_alert_rules_admin_page_and_benchmark_agree(app, client, superadmin_client, planted, monkeypatch):
    scraped = samples(client.get("/metrics").get_data(as_text=True))
    assert scraped[("kernel_billing_webhook_backlog", ())] == 2
    assert 600 <= scraped[("kernel_billing_webhook_oldest_waiting_seconds", ())] < 660
    assert scraped[("kernel_billing_webhook_retry_queue", ())] == 2

    monkeypatch.setattr(alert_rules, "RETRY_QUEUE_LIMIT", 1)  # 2 failed events are over it
    with app.app_context():
        evaluate(db.session, datetime.now(timezone.utc))
        db.session.commit()
        alerts = {alert.kind: alert for alert in db.session.scalars(select(Alert))}
    assert alerts["webhook_lag"].details["waiting"] == 2
    assert 600 <= alerts["webhook_lag"].details["oldest_seconds"] < 660
    assert alerts["retry_queue"].details["queued"] == 2

    page = superadmin_client.get("/admin/events").get_data(as_text=True)
    assert re.search(r'data-backlog="count">2<', page)
    assert 600 <= float(re.search(r'data-backlog="oldest-age">([\d.]+)', page).group(1)) < 660

    with app.app_context():
        assert waiting_above(db.engine, 0) == 2


def test_nothing_waiting_is_an_empty_backlog(app):
    with app.app_context():
        figures = backlog(db.session)
    assert (figures.waiting, figures.oldest_age, figures.retry_queue) == (0, None, 0)

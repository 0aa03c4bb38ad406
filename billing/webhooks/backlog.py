"""The webhook backlog: the one definition of "an event waiting to be applied".

An event waits while it is ``received``, or ``failed`` with a retry to come
(``next_attempt_at`` set): a worker will take it without anyone's help. A
``failed`` event with no retry left waits for a superadmin's replay instead: it is
not lag a worker can catch up with, so it is counted apart (with the retrying ones,
in the retry queue: every failed event). Processed and ignored events are done.

The metrics (``kernel_billing_webhook_backlog``, ``…_oldest_waiting_seconds``,
``…_retry_queue``), the ``webhook_lag`` and ``retry_queue`` alert rules, Admin →
Stripe events and ``bench.processing`` all read these figures from here, so they
cannot disagree (``tests/ops/test_backlog.py`` plants one row of each kind).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from billing.models import ProcessedWebhook, WebhookStatus

_row = ProcessedWebhook
RETRYING: ColumnElement[bool] = and_(_row.status == WebhookStatus.FAILED, _row.next_attempt_at.is_not(None))
FAILED_FINAL: ColumnElement[bool] = and_(_row.status == WebhookStatus.FAILED, _row.next_attempt_at.is_(None))
WAITING: ColumnElement[bool] = or_(_row.status == WebhookStatus.RECEIVED, RETRYING)


@dataclass(frozen=True)
class Backlog:
    waiting: int  # received, or failed with a retry to come: a worker will apply them
    oldest_age: Optional[float]  # seconds since the oldest waiting event was received (None when none waits)
    retrying: int  # of ``waiting``, those that failed and wait for their next attempt
    failed_final: int  # failed with no retry left: they wait for a replay

    @property
    def retry_queue(self) -> int:
        """Every failed event not applied yet, whether a retry or a replay is to come."""
        return self.retrying + self.failed_final


def backlog(session: Session, now: Optional[datetime] = None) -> Backlog:
    """The backlog now (``now`` in wall-clock time, as ``received_at`` is), in one query."""
    waiting, oldest, retrying, final = session.execute(select(
        func.count(case((WAITING, 1))),
        func.min(case((WAITING, _row.received_at))),
        func.count(case((RETRYING, 1))),
        func.count(case((FAILED_FINAL, 1))),
    ).where(_row.status.in_((WebhookStatus.RECEIVED, WebhookStatus.FAILED)))).one()
    age = None
    if waiting and oldest is not None:
        if isinstance(oldest, str):  # min() over a CASE hands SQLite's stored text back as it is
            oldest = datetime.fromisoformat(oldest)
        if oldest.tzinfo is None:  # and a naive value where it does convert
            oldest = oldest.replace(tzinfo=timezone.utc)
        age = max(0.0, ((now or datetime.now(timezone.utc)) - oldest).total_seconds())
    return Backlog(int(waiting), age, int(retrying), int(final))

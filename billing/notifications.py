"""Notices to app owners: written to the outbox, then sent by SMTP when it is configured.

Writing is part of the caller's transaction (the notice exists if and only if the
change that caused it was committed); sending happens later in a job, so a slow
mail server never holds up a payment or a webhook.

Billing records what happened, a ``NoticeKind`` and its data (amounts in minor units
with their currency, dates in ISO 8601, plan codes), never prose: the portal's Notices
tab and the mailer write the subject and body from the kind's template in the reader's
language (``portal/notices/rendering.py``, templates in ``templates/notices/mail/``).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.db import insert_or_load
from billing.models import App, OutboxMessage, OutboxStatus


class NoticeKind(enum.StrEnum):
    """Every notice billing writes; each has a template of the same name (a test checks it)."""

    SUBSCRIBED = "subscription.subscribed"
    UPGRADED = "subscription.upgraded"
    DOWNGRADE_SCHEDULED = "subscription.downgrade_scheduled"
    DOWNGRADE_UNDONE = "subscription.downgrade_undone"
    CANCELED = "subscription.cancel_scheduled"
    RESUMED = "subscription.resumed"
    CARD_CHANGED = "payment_method.changed"
    DUNNING_FAILED = "dunning.failed"
    DUNNING_RETRY_NOTICE = "dunning.retry_notice"
    DUNNING_CANCELED = "dunning.canceled"
    DUNNING_RECOVERED = "dunning.recovered"
    REFUND_EXECUTED = "refund.executed"
    # A superadmin's own words to the owners of several apps: kept as written (subject and body), not a template.
    INCIDENT = "incident"


def iso(moment: Optional[datetime]) -> Optional[str]:
    """A date for a notice's data (rendered later in the reader's language and time zone)."""
    return moment.isoformat() if moment else None


def notify_owners(session: Session, app: App, *, kind: NoticeKind, dedupe_key: str,
                  data: Optional[dict[str, Any]] = None, subject: Optional[str] = None, body: Optional[str] = None,
                  smtp_configured: bool = False) -> list[OutboxMessage]:
    """One outbox message per owner of ``app``; a notice already written for ``dedupe_key`` is not written again.

    Give ``data`` for every kind but ``INCIDENT``, whose ``subject`` and ``body`` are a person's own words.
    """
    kind = NoticeKind(kind)
    if (kind == NoticeKind.INCIDENT) != (data is None):
        raise ValueError("an incident carries a subject and a body; every other notice carries data")
    messages = []
    recipients = sorted({owner.email for owner in app.owners} | ({app.billing_email} if app.billing_email else set()))
    for email in recipients:
        key = f"{dedupe_key}:{email}"
        same = select(OutboxMessage).where(OutboxMessage.dedupe_key == key)
        existing = session.scalar(same)
        if existing:
            messages.append(existing)
            continue
        # Written concurrently by another worker: keep theirs.
        message, _ = insert_or_load(session, OutboxMessage(
            app_id=app.id, to_email=email, kind=kind.value, data=data, subject=subject, body=body, dedupe_key=key,
            status=OutboxStatus.PENDING if smtp_configured else OutboxStatus.STORED), same)
        messages.append(message)
    return messages


@dataclass(frozen=True)
class Occasion:
    """One notice as the Notices tab shows it: written once per recipient, read once."""

    notice: OutboxMessage  # the first recipient's copy: kind, data, date
    copies: tuple[OutboxMessage, ...]  # one per recipient, each with its own delivery status


def occasions(messages: list[OutboxMessage]) -> list[Occasion]:
    """``messages`` (newest first) grouped by occasion: the dedupe key without its ``:<recipient>`` suffix."""
    groups: dict[str, list[OutboxMessage]] = {}
    for message in messages:
        key = message.dedupe_key or f"id:{message.id}"
        occasion = key.removesuffix(f":{message.to_email}")
        groups.setdefault(occasion, []).append(message)
    return [Occasion(copies[0], tuple(sorted(copies, key=lambda m: m.to_email))) for copies in groups.values()]


def owner_notices(session: Session, app_id: int, limit: Optional[int] = 50) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.app_id == app_id).order_by(OutboxMessage.id.desc())
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))

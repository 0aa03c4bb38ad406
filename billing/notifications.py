"""Notices to app owners: written to the outbox, then sent by SMTP when it is configured.

Writing is part of the caller's transaction (the notice exists if and only if the
change that caused it was committed); sending happens later in a job, so a slow
mail server never holds up a payment or a webhook.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.db import insert_or_load
from billing.models import App, OutboxMessage, OutboxStatus


def notify_owners(session: Session, app: App, *, kind: str, subject: str, body: str, dedupe_key: str,
                  smtp_configured: bool = False) -> list[OutboxMessage]:
    """One outbox message per owner of ``app``; a notice already written for ``dedupe_key`` is not written again."""
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
            app_id=app.id, to_email=email, kind=kind, subject=subject, body=body, dedupe_key=key,
            status=OutboxStatus.PENDING if smtp_configured else OutboxStatus.STORED), same)
        messages.append(message)
    return messages


def owner_notices(session: Session, app_id: int, limit: Optional[int] = 50) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.app_id == app_id).order_by(OutboxMessage.id.desc())
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))

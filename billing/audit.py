"""Audit trail and alerts: the two records every state change and every problem leave."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.models import Alert, AlertSeverity, AuditLog


def record(
    session: Session,
    *,
    action: str,
    object_type: str,
    object_id: str | int | None,
    actor: str,
    actor_user_id: int | None = None,
    app_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    correlation_id: str | None = None,
) -> AuditLog:
    entry = AuditLog(
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        actor=actor,
        actor_user_id=actor_user_id,
        app_id=app_id,
        before=before,
        after=after,
        correlation_id=correlation_id,
    )
    session.add(entry)
    return entry


def raise_alert(
    session: Session,
    *,
    kind: str,
    message: str,
    severity: AlertSeverity = AlertSeverity.WARNING,
    app_id: int | None = None,
    details: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> Alert:
    """Add an alert; with ``dedupe_key`` a second raise of the same alert returns the first one."""
    if dedupe_key:
        existing = session.scalar(select(Alert).where(Alert.dedupe_key == dedupe_key))
        if existing:
            return existing
    alert = Alert(
        kind=kind,
        message=message,
        severity=severity,
        app_id=app_id,
        details=details,
        dedupe_key=dedupe_key,
    )
    if not dedupe_key:
        session.add(alert)
        return alert
    # A concurrent raise of the same alert may win the race; keep theirs.
    try:
        with session.begin_nested():
            session.add(alert)
    except IntegrityError:
        return session.scalar(select(Alert).where(Alert.dedupe_key == dedupe_key))
    return alert

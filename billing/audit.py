"""Audit trail and alerts: the two records every state change and every problem leave."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.db import insert_or_load
from billing.models import Alert, AlertSeverity, AuditLog


# ``session.info`` key: when set (a list), audit entries collect there instead of being added one by one, and
# the owner of the transaction adds them together before it commits: one INSERT for a whole batch of events
# (billing/webhooks/processing.py) instead of one per change. They are committed with the changes they describe.
DEFERRED = "audit_deferred"


@dataclass(frozen=True)
class Origin:
    """Who or what caused a change, for the audit trail."""

    actor: str  # "user", "webhook", "job:dunning", "job:reconciliation", "cli"
    correlation_id: Optional[str] = None  # event id, request id, job run
    actor_user_id: Optional[int] = None


def record(
    session: Session,
    *,
    action: str,
    object_type: str,
    object_id: str | int | None,
    origin: Origin,
    app_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLog:
    """Add an audit entry: what ``origin`` changed on the object, from ``before`` to ``after``."""
    entry = AuditLog(
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        actor=origin.actor,
        actor_user_id=origin.actor_user_id,
        app_id=app_id,
        before=before,
        after=after,
        correlation_id=origin.correlation_id,
    )
    deferred = session.info.get(DEFERRED)
    if deferred is not None:
        deferred.append(entry)
    else:
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
    same = select(Alert).where(Alert.dedupe_key == dedupe_key)
    if dedupe_key:
        existing = session.scalar(same)
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
    return insert_or_load(session, alert, same)[0]

"""Recording a verified Stripe event, exactly once, in ``processed_webhooks``.

This runs on the webhook endpoint's hot path, so it is one INSERT through SQLAlchemy
Core in its own short transaction (on PostgreSQL a single autocommit statement,
one round trip), with no ORM unit of work around it. The unique event id does the
deduplication: a second copy, even one racing the first on another connection,
fails the INSERT with an IntegrityError and is reported as a duplicate.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import delete, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from billing.models import ProcessedWebhook, WebhookStatus
from billing.webhooks.events import Event

_table = ProcessedWebhook.__table__
_INSERT = insert(_table)


def _connect(engine: Engine):
    if engine.dialect.name == "postgresql":
        # One statement is its own transaction: skip BEGIN/COMMIT round trips.
        return engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    return engine.connect()


def record(engine: Engine, event: Event, payload: str, *, ignored: bool = False) -> bool:
    """Store ``event`` as received (or ignored); False when it was already recorded (a duplicate)."""
    values = {
        "event_id": event.id,
        "type": event.type,
        "object_id": event.object_id,
        "created": event.created,
        "livemode": event.livemode,
        "payload": payload,
        "status": WebhookStatus.IGNORED if ignored else WebhookStatus.RECEIVED,
        "attempts": 0,
        # Wall-clock time of receipt (not the sandbox's test clock): it is an operational fact.
        "received_at": datetime.now(timezone.utc),
        "processed_at": datetime.now(timezone.utc) if ignored else None,
    }
    with _connect(engine) as connection:
        try:
            connection.execute(_INSERT, values)
            connection.commit()
        except IntegrityError:
            connection.rollback()
            return False
    return True


def forget(engine: Engine, event_id: str) -> None:
    """Remove a row whose job could not be queued, so Stripe's redelivery records it afresh."""
    with engine.begin() as connection:
        connection.execute(delete(_table).where(_table.c.event_id == event_id,
                                                _table.c.status == WebhookStatus.RECEIVED))

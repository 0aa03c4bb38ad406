"""Applying recorded Stripe events: the one place where an event changes our tables.

``processed_webhooks`` is the queue. ``apply_pending`` is the single entry point
where events are applied: it claims a batch of due events (``received``, or
``failed`` whose retry time came) in one short transaction, runs each one's
handler in a savepoint, and commits the handlers' changes together with each
row's new status. Nothing is marked processed that was not, and a crash (a
worker killed with SIGKILL) rolls the whole batch back: its events are simply
still due, for the next worker to take.

* **Once**: claiming takes the rows with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL
  (so two workers never hold the same event) and SQLite's single writer does the
  same there; an event's status changes in the transaction that applies it.
* **In order per object**: only the oldest waiting event of each Stripe object is
  claimable, so events about one object are applied one after the other, in the
  order they arrived, on any number of workers; ``billing.sync``'s watermarks and
  monotone rules then put late arrivals in Stripe's order of truth.
* **No lock across Stripe**: handlers see Stripe through ``prefetch.Prefetched``;
  a call not answered yet stops the event, which is dropped and tried again once
  the applier has made the call with no transaction open.
* **Savepoints only when needed**: a batch first runs its events without a
  savepoint each (two round trips per event saved). An event that stops for
  Stripe before writing anything (handlers ask Stripe first) is simply dropped;
  one that fails, or stops after writing, rolls the whole batch back, which is
  then run again with a savepoint around each event, as before.
* **Retries**: a handler that raises is rolled back; the row gets ``failed``,
  ``attempts + 1``, ``last_error`` and ``next_attempt_at`` (10 s, 1 min, 5 min,
  30 min, 2 h later); after the last one, or at once for an error no retry can
  cure (a price we do not sell), a critical alert, and the event waits for a
  superadmin's replay.
"""
from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Optional, Sequence

from sqlalchemy import bindparam, event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from billing import audit, control, metrics
from billing.audit import Origin
from billing.db import WHOLE_OR_NOTHING
from billing.models import Alert, AlertSeverity, ProcessedWebhook, WebhookStatus
from billing.redaction import redact
from billing.sync import UnknownPrice
from billing.webhooks.correlation import correlated
from billing.webhooks.events import Event
from billing.webhooks.handlers import HANDLERS, HINTS, Handled, HandlerContext
from billing.webhooks.prefetch import Answers, Call, Prefetched, StripeNeeded

log = logging.getLogger(__name__)

# Retrying cannot make Stripe's price one of ours: a person has to look.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (UnknownPrice,)
# Another worker wrote the same row a moment ago (two events about one payment): at once, once more.
CONFLICTS: tuple[type[BaseException], ...] = (IntegrityError, OperationalError)
SETTLED = (WebhookStatus.PROCESSED, WebhookStatus.IGNORED)
# Backoff between attempts of a failing handler: 10 s, 1 min, 5 min, 30 min, 2 h. Long enough for Stripe to
# come back or a late event to arrive; after that, an alert.
RETRY_INTERVALS = (10, 60, 300, 1800, 7200)
MAX_STRIPE_CALLS = 12  # per event: a handler asking for more is looping
MAX_ERROR_LENGTH = 4000


_READS = ("SELECT", "SAVEPO", "RELEAS", "ROLLBA")


@event.listens_for(Engine, "before_cursor_execute")
def _count_writes(connection, _cursor, statement, _parameters, _context, _executemany) -> None:
    # Whether an event wrote anything before it stopped for Stripe: anything but a read counts.
    if statement.lstrip()[:6].upper() not in _READS:
        connection.info["writes"] = connection.info.get("writes", 0) + 1


class _Unsafe(Exception):
    """An event left changes only a rollback undoes: the batch is run again with savepoints."""


def _now() -> datetime:
    # Operational timestamps are wall-clock time, like received_at.
    return datetime.now(timezone.utc)


@dataclass
class Pass:
    """What one ``apply_pending`` did: events settled, and the Stripe calls others wait for."""

    settled: list[tuple[str, WebhookStatus]] = field(default_factory=list)
    needs: dict[str, list[Call]] = field(default_factory=dict)
    measured: list[tuple[str, str, datetime]] = field(default_factory=list)  # (type, outcome, received_at)
    claimed: int = 0  # rows the claim returned (the applier sizes its next claim from what the budget allowed)


_COLUMNS = (ProcessedWebhook.id, ProcessedWebhook.event_id, ProcessedWebhook.type, ProcessedWebhook.object_id,
            ProcessedWebhook.livemode, ProcessedWebhook.payload, ProcessedWebhook.attempts,
            ProcessedWebhook.received_at)


def claim(session: Session, now: datetime, limit: int, event_ids: Optional[Sequence[str]] = None) -> list[Any]:
    """The oldest due events (plain rows, not ORM objects: the claim is on the hot path), locked on PostgreSQL,
    each the first waiting one of its object."""
    row = ProcessedWebhook

    def locked(*conditions):
        return session.execute(select(*_COLUMNS).where(*conditions).order_by(row.id).limit(limit)
                               .with_for_update(skip_locked=True, of=row)).all()

    if event_ids is not None:
        # Named events (a test's delivery applied at once, a replay run by hand): exactly those.
        return locked(row.event_id.in_(event_ids), row.status.in_((WebhookStatus.RECEIVED, WebhookStatus.FAILED)))
    # Two index scans in id order rather than one OR, which would sort the whole backlog on every claim.
    rows = [*locked(row.status == WebhookStatus.RECEIVED),
            *locked(row.status == WebhookStatus.FAILED, row.next_attempt_at <= now)]
    rows.sort(key=lambda item: item.id)
    if session.get_bind().dialect.name == "sqlite":
        # One writer, no SKIP LOCKED: every earlier waiting event is among these, oldest first.
        seen: set[str] = set()
        heads = []
        for item in rows:
            if item.object_id is None or item.object_id not in seen:
                heads.append(item)
            if item.object_id is not None:
                seen.add(item.object_id)
        return heads
    objects = {item.object_id for item in rows if item.object_id is not None}
    if not objects:
        return rows
    # Head of line: an object's later events wait while an earlier one is waiting, even one that another
    # worker holds (SKIP LOCKED hid it from us). One indexed look-up for the whole batch.
    first: dict[str, int] = dict(session.execute(select(row.object_id, func.min(row.id)).where(
        row.object_id.in_(objects), row.status == WebhookStatus.RECEIVED).group_by(row.object_id)).all())
    return [item for item in rows if item.object_id is None or first.get(item.object_id, item.id) >= item.id]


def apply_pending(session: Session, gateway: Any, answers: dict[str, Answers], *, limit: int = 100,
                  budget: float = 0.05, smtp_configured: bool = False, event_ids: Optional[Sequence[str]] = None,
                  retry_intervals: Sequence[int] = RETRY_INTERVALS,
                  someone_waits: Optional[Callable[[], bool]] = None) -> Pass:
    """Apply due events in one transaction of at most about ``budget`` seconds; the caller then makes
    ``Pass.needs`` (with no transaction open) into ``answers`` and calls again. ``someone_waits``: asked
    between events, True ends the transaction there (a delivery waits for SQLite's write lock).

    This is the single entry point where Stripe's events change our tables. While billing is
    paused (``billing.control.holds_event``) an event stays ``received`` and is applied after the
    resume, in order, once.
    """
    options = dict(limit=limit, budget=budget, smtp_configured=smtp_configured, event_ids=event_ids,
                   retry_intervals=retry_intervals, someone_waits=someone_waits)
    try:
        result = _pass(session, gateway, answers, savepoints=False, **options)
    except _Unsafe as unsafe:
        log.info("a batch was rolled back (%s): applying it again with savepoints", unsafe)
        result = _pass(session, gateway, answers, savepoints=True, **options)
    for event_id, _status in result.settled:  # kept until committed: a batch run again needs them
        answers.pop(event_id, None)
    for event_type, outcome, received_at in result.measured:  # counted once committed, never before
        metrics.webhook_applied(event_type, outcome, received_at)
    return result


def _pass(session: Session, gateway: Any, answers: dict[str, Answers], *, savepoints: bool, limit: int,
          budget: float, smtp_configured: bool, event_ids: Optional[Sequence[str]],
          retry_intervals: Sequence[int], someone_waits: Optional[Callable[[], bool]]) -> Pass:
    started = time.monotonic()
    result = Pass()
    now = _now()
    applied: list[dict[str, Any]] = []
    session.info[WHOLE_OR_NOTHING] = not savepoints  # without savepoints, any error reruns the batch with them
    try:
        rows = claim(session, now, limit, event_ids)
        result.claimed = len(rows)
        started = time.monotonic()  # the claim is bounded by ``limit``; the budget bounds the handlers
        # One read for the whole batch: while no pause is open (the common case) no event is held.
        paused = bool(rows) and control.open_pause(session) is not None
        for row in rows:
            if (result.settled or result.needs) and (time.monotonic() - started > budget
                                                     or (someone_waits is not None and someone_waits())):
                break  # the rest stay due: a short transaction matters more than a large batch
            with correlated(row.event_id):
                status = _apply(session, gateway, row, answers, result, smtp_configured, retry_intervals, now,
                                paused, applied, savepoints)
            if status is not None:
                result.settled.append((row.event_id, status))
                result.measured.append((row.type, status.value, row.received_at))
        if applied:
            # The applied events' new statuses in one statement (executemany), in the transaction that holds
            # their handlers' changes: both are committed together or not at all.
            table = ProcessedWebhook.__table__
            session.execute(update(table).where(table.c.id == bindparam("row_id")).values(
                status=bindparam("new_status"), attempts=bindparam("new_attempts"), processed_at=now,
                next_attempt_at=None), applied)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info.pop(WHOLE_OR_NOTHING, None)
    return result


def _set(session: Session, row_id: int, **values: Any) -> None:
    session.execute(update(ProcessedWebhook).where(ProcessedWebhook.id == row_id).values(**values))


def _apply(session: Session, gateway: Any, row: Any, answers: dict[str, Answers], result: Pass,
           smtp_configured: bool, retry_intervals: Sequence[int], now: datetime, paused: bool,
           applied: list[dict[str, Any]], savepoints: bool) -> Optional[WebhookStatus]:
    event = Event.parse(row.payload)
    if paused and control.holds_event(session, event):  # it stays received, applied in order on resume
        log.info("%s held: billing is paused", event.type)
        return None
    known = answers.setdefault(row.event_id, Answers())
    tried_before = row.attempts > 0  # a retry or a replay: a failure alert may be open
    connection = session.connection().info
    for attempt in (1, 2):
        writes = connection.get("writes", 0)
        try:
            with session.begin_nested() if savepoints else nullcontext():
                status = _handle(session, Prefetched(gateway, known), row, event, smtp_configured)
                if tried_before:
                    _resolve_failure_alert(session, event.id, now)
                if not savepoints:
                    session.flush()  # written now: the next event starts with nothing pending
        except StripeNeeded as need:
            if not savepoints and (connection.get("writes", 0) != writes or session.new or session.dirty
                                   or session.deleted):
                raise _Unsafe(f"{event.type} stopped for Stripe after writing") from None
            if len(known) < MAX_STRIPE_CALLS:
                # With the call it stopped at, the calls its payload says it will make next (the PaymentIntent
                # that paid an invoice): fetched together, the event is run once more instead of once per call.
                hinted = HINTS.get(event.type)
                later = [call for call in (hinted(event) if hinted else ()) if call != need.call and call not in known]
                result.needs[row.event_id] = [need.call, *later[:MAX_STRIPE_CALLS - len(known) - 1]]
                return None
            error: BaseException = RuntimeError(f"more than {MAX_STRIPE_CALLS} Stripe calls for one event")
        except CONFLICTS as conflict:
            if not savepoints:
                raise _Unsafe(f"{event.type}: {type(conflict).__name__}") from conflict
            if attempt == 1:
                log.info("%s conflicted with another writer (%s): once more", event.type, type(conflict).__name__)
                continue
            error = conflict
        except Exception as failure:  # noqa: BLE001 - recorded on the row, retried later
            if not savepoints:
                raise _Unsafe(f"{event.type}: {type(failure).__name__}") from failure
            error = failure
        else:
            applied.append({"row_id": row.id, "new_status": status, "new_attempts": row.attempts + 1})
            log.info("%s %s", event.type, status)
            return status
        answers.pop(row.event_id, None)
        _record_failure(session, row, event, error, retry_intervals, now)
        return WebhookStatus.FAILED
    return None  # unreachable: the loop returns


def _handle(session: Session, gateway: Any, row: Any, event: Event,
            smtp_configured: bool) -> WebhookStatus:
    if row.livemode != gateway.livemode:
        log.info("%s is from the other mode (livemode=%s): ignored", event.type, row.livemode)
        return WebhookStatus.IGNORED
    handler = HANDLERS.get(event.type)
    if handler is None:
        log.info("no handler for %s: ignored", event.type)
        return WebhookStatus.IGNORED
    origin = Origin(actor="webhook", correlation_id=event.id)
    handled = handler(HandlerContext(session, gateway, event, origin, smtp_configured=smtp_configured))
    if handled == Handled.NOT_OURS:
        log.info("%s is about %s, which is not ours: ignored", event.type, event.object_id)
        return WebhookStatus.IGNORED
    return WebhookStatus.PROCESSED


def failure_alert_key(event_id: str) -> str:
    return f"webhook_failed:{event_id}"


def _record_failure(session: Session, row: Any, event: Event, error: BaseException,
                    retry_intervals: Sequence[int], now: datetime) -> None:
    message = redact(f"{type(error).__name__}: {error}")[:MAX_ERROR_LENGTH]
    permanent = isinstance(error, PERMANENT_ERRORS)
    retries_done = row.attempts  # before this one
    next_attempt_at = None  # no retry left: a superadmin replays it
    if not (permanent or retries_done >= len(retry_intervals)):
        next_attempt_at = now + timedelta(seconds=retry_intervals[retries_done])
    _set(session, row.id, status=WebhookStatus.FAILED, attempts=row.attempts + 1, last_error=message,
         next_attempt_at=next_attempt_at)
    if next_attempt_at is None:
        audit.raise_alert(
            session, kind="webhook_failed", severity=AlertSeverity.CRITICAL,
            message=f"Stripe event {event.id} ({event.type}) could not be processed: {message}",
            details={"event": event.id, "type": event.type, "object": event.object_id},
            dedupe_key=failure_alert_key(event.id),
        )
        log.error("%s failed%s: %s", event.type, " and a retry cannot help" if permanent else " for the last time",
                  message)
    else:
        log.warning("%s failed (%s); retried at %s", event.type, message, next_attempt_at.isoformat())


def _resolve_failure_alert(session: Session, event_id: str, now: datetime) -> None:
    alert = session.scalar(select(Alert).where(Alert.dedupe_key == failure_alert_key(event_id),
                                               Alert.resolved_at.is_(None)))
    if alert is not None:
        alert.resolved_at = now


def apply_now(session: Session, gateway: Any, event_ids: Iterable[str], *, smtp_configured: bool = False,
              retry_intervals: Sequence[int] = ()) -> dict[str, WebhookStatus]:
    """Apply the named events to the end, in this process (tests with ``RQ_ASYNC`` off, the CLI).

    The same path as the worker's: Stripe is called between short transactions.
    """
    answers: dict[str, Answers] = {}
    settled: dict[str, WebhookStatus] = {}
    waiting = list(event_ids)
    while waiting:
        done = apply_pending(session, gateway, answers, event_ids=waiting, smtp_configured=smtp_configured,
                             retry_intervals=retry_intervals, budget=float("inf"))
        settled.update(done.settled)
        for event_id, calls in done.needs.items():
            for call in calls:
                answers[event_id].fetch(gateway, call)
        waiting = list(done.needs)
    return settled


def why_ignored(row: ProcessedWebhook, gateway_livemode: bool) -> str:
    """A short reason for an ignored event, for the events page."""
    if row.livemode != gateway_livemode:
        return "livemode_mismatch"
    if row.type not in HANDLERS:
        return "no_handler"
    return "not_ours"


def request_replay(session: Session, row: ProcessedWebhook, *, user_id: Optional[int]) -> None:
    """Put a recorded event back in line: the applier takes it like a new one."""
    before = {"status": row.status.value, "attempts": row.attempts}
    row.status = WebhookStatus.RECEIVED
    row.next_attempt_at = None
    audit.record(session, action="webhook.replay_requested", object_type="processed_webhook", object_id=row.event_id,
                 before=before, after={"status": WebhookStatus.RECEIVED.value},
                 origin=Origin(actor="user", actor_user_id=user_id, correlation_id=row.event_id))

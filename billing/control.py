"""The billing kill switch: pause billing, resume it for one app first, then for all.

One rule, ``billing_paused(session, app_id)``, answered from the database so every
web worker, RQ worker and CLI process sees the same switch at once. Each entry
point where money moves or Stripe's state is applied asks it:

* applying a recorded Stripe event (``billing.webhooks.processing``): a held event
  stays ``received`` (verified and recorded, not applied); resuming queues the held
  events again, oldest first, and each is applied once like any other;
* the dunning job (``billing.dunning.advance_dunning``): no retry, no notice, no
  cancellation for a paused app; the next pass after the resume catches up;
* an owner's action that writes to Stripe (``billing.subscriptions``, paying an open
  invoice): refused with ``BillingPaused`` before anything is written.

A pause is a row (``billing_pauses``); resuming some apps first adds them to its
allow-list (``billing_pause_apps``); resuming all closes the row. Every pause and
resume is audited and written to the release ledger (``billing.releases``).
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Iterable, Optional, Sequence

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from billing import audit, releases
from billing.db import insert_once
from billing.errors import BillingError, PlanChangeRefused
from billing.models import (
    App,
    BillingPause,
    BillingPauseApp,
    ProcessedWebhook,
    Release,
    ReleaseKind,
    WebhookStatus,
)
from billing.notifications import NoticeKind, notify_owners
from billing.releases import Actor
from billing.webhooks.events import Event, MalformedEvent

log = logging.getLogger(__name__)

MAX_REASON = 2000
MAX_SUBJECT = 200
MAX_BODY = 10000


class BillingPaused(PlanChangeRefused):
    """Billing is paused by the operators: the action was refused and nothing was written or charged."""

    code = "billing_paused"

    def __init__(self, app_id: Optional[int] = None):
        super().__init__(f"billing is paused{'' if app_id is None else f' for app {app_id}'}")
        self.app_id = app_id


class NotPaused(BillingError, ValueError):
    """Resume asked while billing runs."""


def _now() -> datetime:
    # Operational moments are wall-clock time, whatever the sandbox's test clock says.
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------- the rule


# Built once: every signed-in page asks (the banner).
_OPEN_PAUSE = select(BillingPause).where(BillingPause.resumed_at.is_(None))


def open_pause(session: Session) -> Optional[BillingPause]:
    return session.scalar(_OPEN_PAUSE)


def billing_paused(session: Session, app_id: Optional[int]) -> bool:
    """Whether billing is paused for ``app_id``: a pause is open and the app was not resumed first.

    ``app_id=None`` stands for what belongs to no app of ours (or to every app): it is
    paused while any pause is open.
    """
    query = select(BillingPause.id).where(BillingPause.resumed_at.is_(None))
    if app_id is not None:
        query = query.where(~exists().where(BillingPauseApp.pause_id == BillingPause.id,
                                            BillingPauseApp.app_id == app_id))
    return session.scalar(query.limit(1)) is not None


def refuse_if_paused(session: Session, app_id: Optional[int]) -> None:
    """Raise ``BillingPaused`` when billing is paused for ``app_id`` (the entry points of owners' actions)."""
    if billing_paused(session, app_id):
        raise BillingPaused(app_id)


def event_customer(event: Event) -> Optional[str]:
    """The Stripe customer an event is about, read from its object (a customer event is about itself)."""
    if event.object.get("object") == "customer":
        return event.object_id
    customer = event.object.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return customer if isinstance(customer, str) else None


def event_app_id(session: Session, event: Event) -> Optional[int]:
    customer = event_customer(event)
    if customer is None:
        return None
    return session.scalar(select(App.id).where(App.stripe_customer_id == customer))


def holds_event(session: Session, event: Event) -> bool:
    """Whether ``event`` must wait (stay ``received``) instead of being applied now."""
    if open_pause(session) is None:  # the common case: one indexed read
        return False
    return billing_paused(session, event_app_id(session, event))


def held_event_ids(session: Session, app_ids: Optional[Iterable[int]] = None) -> list[str]:
    """Events recorded and not applied yet, oldest first (Stripe's ``created``, then arrival); only those of
    ``app_ids`` when given."""
    rows = session.execute(select(ProcessedWebhook.event_id, ProcessedWebhook.payload)
                           .where(ProcessedWebhook.status == WebhookStatus.RECEIVED)
                           .order_by(ProcessedWebhook.created, ProcessedWebhook.received_at, ProcessedWebhook.id))
    if app_ids is None:
        return [event_id for event_id, _payload in rows]
    wanted = set(app_ids)
    held = []
    for event_id, payload in rows:
        try:
            app_id = event_app_id(session, Event.parse(payload))
        except MalformedEvent:  # recorded events were parsed once already; never block the others on one
            continue
        if app_id in wanted:
            held.append(event_id)
    return held


# ---------------------------------------------------------------- pause and resume


def pause_billing(session: Session, *, reason: str, actor: Actor, gateway_mode: str) -> tuple[BillingPause, bool]:
    """Pause billing for every app; returns the open pause and whether this call opened it.

    Pausing while paused changes nothing (and does not reset an allow-list).
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("say why billing is paused (a reason is required)")
    if len(reason) > MAX_REASON:
        raise ValueError(f"the reason is longer than {MAX_REASON} characters")
    existing = open_pause(session)
    if existing is not None:
        return existing, False
    pause = BillingPause(scope="billing", reason=reason, paused_by=actor.who, paused_by_id=actor.user_id,
                         paused_at=_now())
    if not insert_once(session, pause):  # paused at the same moment by someone else: theirs stands
        return open_pause(session), False
    audit.record(session, action="billing.paused", object_type="billing_pause", object_id=pause.id,
                 before={"billing_paused": False}, after={"billing_paused": True, "reason": reason},
                 origin=actor.origin)
    releases.write(session, ReleaseKind.BILLING_PAUSED, actor=actor, gateway_mode=gateway_mode, summary=reason,
                   details={"pause": pause.id})
    log.warning("billing paused by %s: %s", actor.who, reason)
    return pause, True


def resume_billing(session: Session, *, actor: Actor, gateway_mode: str,
                   app_ids: Optional[Sequence[int]] = None) -> list[str]:
    """Resume billing for ``app_ids`` first (an allow-list), or for every app when None.

    Returns the ids of the held events to queue again, oldest first; the caller
    queues them after committing. Raises ``NotPaused`` when billing runs, and
    ``ValueError`` for an unknown app.
    """
    pause = open_pause(session)
    if pause is None:
        raise NotPaused("billing is not paused")
    if app_ids is None:
        pause.resumed_at = _now()
        pause.resumed_by, pause.resumed_by_id = actor.who, actor.user_id
        audit.record(session, action="billing.resumed", object_type="billing_pause", object_id=pause.id,
                     before={"billing_paused": True}, after={"billing_paused": False},
                     origin=actor.origin)
        releases.write(session, ReleaseKind.BILLING_RESUMED, actor=actor, gateway_mode=gateway_mode,
                       summary="billing resumed for every app", details={"pause": pause.id, "apps": "all"})
        log.warning("billing resumed for every app by %s", actor.who)
        session.flush()
        return held_event_ids(session)

    wanted = sorted(set(app_ids))
    if not wanted:
        raise ValueError("choose at least one app to resume first")
    found = set(session.scalars(select(App.id).where(App.id.in_(wanted))))
    if missing := [app_id for app_id in wanted if app_id not in found]:
        raise ValueError(f"no app with id {', '.join(map(str, missing))}")
    already = {row.app_id for row in pause.apps}
    added = [app_id for app_id in wanted if app_id not in already]
    for app_id in added:
        session.add(BillingPauseApp(pause_id=pause.id, app_id=app_id, resumed_by=actor.who, created_at=_now()))
        audit.record(session, action="billing.resumed_for_app", object_type="billing_pause", object_id=pause.id,
                     app_id=app_id, before={"billing_paused": True}, after={"billing_paused": False},
                     origin=actor.origin)
    if added:
        releases.write(session, ReleaseKind.BILLING_RESUMED, actor=actor, gateway_mode=gateway_mode,
                       summary=f"billing resumed first for {len(added)} app(s)",
                       details={"pause": pause.id, "apps": added})
        log.warning("billing resumed first for apps %s by %s", added, actor.who)
    session.flush()
    return held_event_ids(session, added)


# ---------------------------------------------------------------- incident notice


def send_incident_notice(session: Session, *, app_ids: Sequence[int], subject: str, body: str, actor: Actor,
                         gateway_mode: str, smtp_configured: bool, attempt: Optional[str] = None) -> tuple[Release, int]:
    """A notice to the owners of the chosen apps, through the outbox; returns its ledger row and how many messages
    were written.

    ``attempt`` (the form's token) makes a double submit find the first notice instead of sending a second.
    """
    subject, body = (subject or "").strip(), (body or "").strip()
    if not subject or not body:
        raise ValueError("a subject and a message are required")
    if len(subject) > MAX_SUBJECT or len(body) > MAX_BODY:
        raise ValueError(f"the subject is at most {MAX_SUBJECT} characters and the message {MAX_BODY}")
    wanted = sorted(set(app_ids))
    if not wanted:
        raise ValueError("choose at least one app")
    apps = list(session.scalars(select(App).where(App.id.in_(wanted)).order_by(App.id)))
    if len(apps) != len(wanted):
        found = {app.id for app in apps}
        raise ValueError(f"no app with id {', '.join(str(i) for i in wanted if i not in found)}")
    key = f"incident_notice:{attempt}" if attempt else None
    if key and (earlier := session.scalar(select(Release).where(Release.dedupe_key == key))) is not None:
        return earlier, 0
    entry = releases.write(session, ReleaseKind.INCIDENT_NOTICE, actor=actor, gateway_mode=gateway_mode,
                           summary=subject, details={"apps": wanted}, dedupe_key=key)
    written = 0
    for app in apps:
        written += len(notify_owners(session, app, kind=NoticeKind.INCIDENT, subject=subject, body=body,
                                     dedupe_key=f"incident:{entry.id}:app:{app.id}",
                                     smtp_configured=smtp_configured))
    entry.details = {"apps": wanted, "messages": written}
    audit.record(session, action="incident.notice_sent", object_type="release", object_id=entry.id, before=None,
                 after={"subject": subject, "apps": wanted, "messages": written},
                 origin=actor.origin)
    log.warning("incident notice %s to %d app(s), %d message(s), by %s", entry.id, len(apps), written, actor.who)
    return entry, written

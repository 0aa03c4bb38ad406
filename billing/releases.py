"""The release ledger: what was deployed, in which gateway mode, and every pause, resume and incident notice.

Operators read it to answer "what changed just before this went wrong?" and to
roll back: each row says what ran (version, git revision), against which Stripe
(sandbox, Stripe test mode or live) and who did it. Rows are only ever added.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing import audit
from billing.audit import Origin
from billing.models import Release, ReleaseKind

log = logging.getLogger(__name__)

MAX_FIELD = 64


@dataclass(frozen=True)
class Actor:
    """Who acts on the operations controls: ``who`` names them in the ledger, ``kind`` in the audit trail."""

    who: str  # a superadmin's e-mail, "cli:<login>", "startup"
    kind: str = "user"  # "user", "cli", "startup"
    user_id: Optional[int] = None
    correlation_id: Optional[str] = None

    @property
    def origin(self) -> Origin:
        """The same person, as the audit trail names whoever acts."""
        return Origin(actor=self.kind, actor_user_id=self.user_id, correlation_id=self.correlation_id)


def gateway_mode(*, sandbox: bool, livemode: bool) -> str:
    """The ledger's name for the Stripe the gateway talks to."""
    if sandbox:
        return "sandbox"
    return "stripe-live" if livemode else "stripe-test"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def write(session: Session, kind: ReleaseKind, *, actor: Actor, gateway_mode: str, summary: str = "",
          version: Optional[str] = None, git_revision: Optional[str] = None,
          details: Optional[dict[str, Any]] = None, dedupe_key: Optional[str] = None) -> Release:
    """Add one ledger row (in the caller's transaction)."""
    entry = Release(kind=kind, version=version, git_revision=git_revision, gateway_mode=gateway_mode,
                    actor=actor.who, actor_user_id=actor.user_id, summary=summary, details=details,
                    dedupe_key=dedupe_key, created_at=_now())
    session.add(entry)
    session.flush()
    return entry


def latest(session: Session, *kinds: ReleaseKind) -> Optional[Release]:
    query = select(Release).order_by(Release.id.desc()).limit(1)
    if kinds:
        query = query.where(Release.kind.in_(kinds))
    return session.scalar(query)


def record_release(session: Session, *, version: str, git_revision: str, gateway_mode: str, actor: Actor,
                   notes: str = "") -> Release:
    """A deploy: ``flask release record``. Audited like every operations change."""
    version, git_revision = (version or "").strip(), (git_revision or "").strip()
    if not version:
        raise ValueError("a version is required")
    if len(version) > MAX_FIELD or len(git_revision) > MAX_FIELD:
        raise ValueError(f"version and git revision are at most {MAX_FIELD} characters")
    entry = write(session, ReleaseKind.RELEASE, actor=actor, gateway_mode=gateway_mode, summary=notes.strip(),
                  version=version, git_revision=git_revision or None)
    audit.record(session, action="release.recorded", object_type="release", object_id=entry.id, before=None,
                 after={"version": version, "git_revision": git_revision or None, "gateway_mode": gateway_mode},
                 origin=actor.origin)
    return entry


def record_gateway_mode(session: Session, mode: str, *, version: Optional[str] = None,
                        git_revision: Optional[str] = None) -> Optional[Release]:
    """At start-up: a ledger row and an audit entry when the gateway runs in another mode than the last one
    recorded (or for the first time); None when nothing changed.

    Several processes start together (web workers, RQ workers): the dedupe key, made
    of the previous row and the new mode, lets exactly one of them write the change.
    """
    previous = latest(session, ReleaseKind.GATEWAY_MODE)
    if previous is not None and previous.gateway_mode == mode:
        return None
    key = f"gateway_mode:{previous.id if previous else 0}:{mode}"
    actor = Actor(who="startup", kind="startup")
    try:
        with session.begin_nested():
            entry = write(session, ReleaseKind.GATEWAY_MODE, actor=actor, gateway_mode=mode, version=version,
                          git_revision=git_revision, dedupe_key=key,
                          summary=f"gateway mode {previous.gateway_mode if previous else 'unknown'} -> {mode}")
            audit.record(session, action="gateway.mode_changed", object_type="release", object_id=entry.id,
                         before={"gateway_mode": previous.gateway_mode if previous else None},
                         after={"gateway_mode": mode}, origin=actor.origin)
    except IntegrityError:  # another process recorded the same change first
        return None
    log.warning("gateway mode recorded: %s", mode)
    return entry

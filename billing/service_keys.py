"""Service keys: how other services of the kernel call the Billing Gateway API for one app.

A key looks like ``kgw_<random>``; it is shown once when made and only its SHA-256
is kept (a key is 256 random bits, so a plain hash is enough: nothing to guess).
Each key belongs to one app and names the operations it may call.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Iterable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing import audit, clock
from billing.errors import BillingError
from billing.audit import Origin
from billing.models import App, ServiceKey

KEY_PREFIX = "kgw_"
SCOPES = ("tokenize", "authorize", "capture", "refund")


class ServiceKeyError(BillingError, ValueError):
    """A key that cannot be made as asked (no scope, unknown scope, no name)."""


@dataclass(frozen=True)
class IssuedKey:
    row: ServiceKey
    secret: str  # the only time the plain key exists


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, app: App, *, name: str, scopes: Iterable[str], origin: Origin) -> IssuedKey:
    """Make a key for ``app``; the caller shows ``secret`` once and never stores it."""
    chosen = sorted(set(scopes))
    unknown = [scope for scope in chosen if scope not in SCOPES]
    if unknown:
        raise ServiceKeyError(f"unknown scope(s): {', '.join(unknown)}")
    if not chosen:
        raise ServiceKeyError("choose at least one operation")
    name = name.strip()
    if not name:
        raise ServiceKeyError("a key needs a name")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ServiceKey(app_id=app.id, name=name[:120], prefix=secret[:12], key_hash=hash_key(secret), scopes=chosen,
                     created_by_id=origin.actor_user_id)
    session.add(row)
    session.flush()
    audit.record(session, action="service_key.created", object_type="service_key", object_id=row.id, app_id=app.id,
                 after={"name": row.name, "prefix": row.prefix, "scopes": chosen}, origin=origin)
    return IssuedKey(row, secret)


def revoke_key(session: Session, key: ServiceKey, *, origin: Origin) -> bool:
    """Revoke ``key`` (kept for the record); False when it already was."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = clock.now()
    key.revoked_by_id = origin.actor_user_id
    audit.record(session, action="service_key.revoked", object_type="service_key", object_id=key.id,
                 app_id=key.app_id, before={"revoked": False}, after={"revoked": True}, origin=origin)
    return True


def authenticate(session: Session, secret: str) -> Optional[ServiceKey]:
    """The live key whose hash matches ``secret``, or None."""
    if not secret.startswith(KEY_PREFIX):
        return None
    return session.scalar(select(ServiceKey).where(ServiceKey.key_hash == hash_key(secret),
                                                   ServiceKey.revoked_at.is_(None)))

"""An owner's action on an app's billing, run with no database transaction open while Stripe is called.

A plan change, a checkout, a card change or a billing-details edit used to lock a row and call
Stripe inside that transaction; on SQLite that held the one write lock for the whole round trip,
so webhook acknowledgements and every other writer waited for Stripe. Now each action runs as:

1. **claim** (``owner_action``): a row in ``owner_action_claims`` keyed by the app, inserted and
   committed at once. The primary key lets one action per app through at a time; a second one
   (a double click, another tab) waits for the first to finish and then checks the state it left.
2. **check** in a short transaction: the rules refuse here (``Refused``), before Stripe hears of it.
   The values Stripe needs are read into plain variables and the transaction is ended
   (``end_transaction``).
3. **Stripe**, with no transaction open. Each write carries an idempotency key derived from what
   it does (and, for a change that can be undone and made again, the claim's token).
4. **result** in a short transaction: rows re-read (and locked) and brought up to date through
   ``billing.sync``, whose watermarks keep state moving forward; the claim is dropped in the same
   commit.

A crash between claim and result heals: the claim expires after ``LEASE`` and the next action
takes it over, checks our rows again and calls Stripe again (an answer Stripe already gave is
replayed under the same key, or setting a value already set changes nothing), and the webhook or
reconciliation brings our rows up to what Stripe holds meanwhile.

The portal enforces step 3: its gateway hook raises when a request or a job calls Stripe with a
transaction open (``portal/payments.py``).
"""
from __future__ import annotations

import contextlib
import logging
import secrets
import time
from datetime import datetime, timedelta, timezone
from typing import Iterator

from sqlalchemy import delete
from sqlalchemy.orm import Session

from billing.audit import Origin
from billing.db import insert_once
from billing.errors import PlanChangeRefused
from billing.models import OwnerActionClaim

log = logging.getLogger(__name__)

# A claim older than this belongs to a request that died (Stripe's slowest answer, with the SDK's retries, is
# about 100 s): the next action takes it over.
LEASE = timedelta(minutes=2)
# How long a second action waits for the first one (as it waited on the row lock); then it is told to retry.
WAIT_SECONDS = 35.0
POLL_SECONDS = 0.05


class Refused(PlanChangeRefused):
    """The rules refuse this action; ``code`` says which rule (the portal turns it into a message)."""

    def __init__(self, code: str, message: str, **details):
        super().__init__(message)
        self.code = code
        self.details = details


class ActionInProgress(Refused):
    """Another action on the app's billing is still waiting for Stripe after ``WAIT_SECONDS``."""

    def __init__(self, app_id: int, action: str):
        super().__init__("action_in_progress", f"app {app_id}: {action} is still in progress")


def end_transaction(session: Session) -> None:
    """Commit whatever the session holds, so no transaction is open while Stripe is called.

    Loaded objects expire on commit: read what the call needs into variables first, since
    touching an expired attribute begins a new transaction.
    """
    session.commit()


@contextlib.contextmanager
def owner_action(session: Session, app_id: int, action: str, origin: Origin, *,
                 wait: float | None = None) -> Iterator[str]:
    """Run the block as ``app_id``'s one action in flight; yields the claim's token (for idempotency keys).

    Commits: the claim before the block; the block's writes with the claim's release after it, also
    on ``Refused`` (a refusal keeps the facts it wrote, such as an alert); anything else is rolled
    back and the claim released on its own.
    """
    token = secrets.token_hex(16)
    _claim(session, app_id, action, token, origin, WAIT_SECONDS if wait is None else wait)
    try:
        yield token
    except Refused:
        _release(session, app_id, token, quiet=True)
        raise
    except BaseException:
        session.rollback()
        _release(session, app_id, token, quiet=True)
        raise
    _release(session, app_id, token)


def _claim(session: Session, app_id: int, action: str, token: str, origin: Origin, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        # Leases are about requests, not billing time: the system clock, never a Stripe test clock.
        now = datetime.now(timezone.utc)
        abandoned = session.execute(delete(OwnerActionClaim).where(
            OwnerActionClaim.app_id == app_id, OwnerActionClaim.claimed_at < now - LEASE))
        if abandoned.rowcount:
            log.warning("app %s: took over an owner action claim older than %s (its request died)", app_id, LEASE)
        claimed = insert_once(session, OwnerActionClaim(app_id=app_id, action=action, token=token, claimed_at=now,
                                                        claimed_by_id=origin.actor_user_id,
                                                        correlation_id=origin.correlation_id))
        session.commit()
        if claimed:
            return
        if time.monotonic() >= deadline:
            raise ActionInProgress(app_id, action)
        time.sleep(POLL_SECONDS)


def _release(session: Session, app_id: int, token: str, *, quiet: bool = False) -> None:
    """Drop our claim (never another's) and commit it with whatever the block left pending.

    ``quiet`` (the block already failed): a failure here is logged, not raised, so the block's own
    error is the one reported; the lease frees the claim."""
    try:
        session.execute(delete(OwnerActionClaim).where(OwnerActionClaim.app_id == app_id,
                                                       OwnerActionClaim.token == token))
        session.commit()
    except Exception:
        session.rollback()
        if not quiet:
            raise
        log.exception("app %s: could not release the owner action claim; it expires after %s", app_id, LEASE)

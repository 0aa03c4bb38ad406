"""Pausing and resuming billing as a superadmin would, in one short transaction."""
from __future__ import annotations

from typing import Optional, Sequence

from billing.control import pause_billing, resume_billing
from billing.releases import Actor
from portal.control import requeue
from portal.extensions import db

OPERATOR = Actor(who="ops@kernel.test", kind="user")


def pause(app, reason: str = "double charges suspected") -> None:
    with app.app_context():
        pause_billing(db.session, reason=reason, actor=OPERATOR, gateway_mode="sandbox")
        db.session.commit()


def resume(app, app_ids: Optional[Sequence[int]] = None) -> int:
    """Resume (some apps first, or all) and queue the held events, as the page and the command do."""
    with app.app_context():
        held = resume_billing(db.session, actor=OPERATOR, gateway_mode="sandbox", app_ids=app_ids)
        db.session.commit()
        return requeue(held)

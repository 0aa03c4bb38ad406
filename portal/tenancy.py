"""Tenant isolation: every view loads an app through here.

Loading and checking ownership happen in one place, so no view can forget the
check. Another tenant's app is a 404, never a 403: its existence is not revealed.
"""
from __future__ import annotations

from typing import Optional

from flask import abort
from flask_login import current_user
from sqlalchemy import Select, select

from billing.models import App, User, app_owners
from portal.acting import refuse_changes_when_read_only
from portal.extensions import db
from portal.urls import is_id


def visible_apps(user: User) -> Select:
    """A select of the apps ``user`` may see: all for a superadmin, their own for an owner."""
    query = select(App).order_by(App.name)
    if not user.is_superadmin:
        query = query.join(app_owners).where(app_owners.c.user_id == user.id)
    return query


def get_app_or_404(app_id: int, user: Optional[User] = None) -> App:
    """The app, when ``user`` (default: the signed-in one; the API passes its token's) may see it; else a 404."""
    viewer = user if user is not None else current_user
    # The app and the right to see it in one read (visible_apps' rule), rather than loading its owners to check.
    app = db.session.scalar(visible_apps(viewer).where(App.id == app_id)) if is_id(app_id) else None
    if app is None:
        abort(404)
    refuse_changes_when_read_only(app)
    return app

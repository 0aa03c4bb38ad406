"""Tenant isolation: every view loads an app through here.

Loading and checking ownership happen in one place, so no view can forget the
check. Another tenant's app is a 404, never a 403: its existence is not revealed.
"""
from __future__ import annotations

from typing import Optional

from flask import abort
from flask_login import current_user
from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import joinedload

from billing.models import App, User, app_owners
from portal.acting import refuse_changes_when_read_only
from portal.extensions import db
from portal.urls import is_id


# The rule, built once: every app page reads through it, and building a statement costs more than SQLite
# running it. Keyed by "the viewer is a superadmin"; the viewer is bound when it runs (``viewer``).
_EVERY_APP = select(App).order_by(App.name)
VISIBLE_APPS: dict[bool, Select] = {
    True: _EVERY_APP,
    False: _EVERY_APP.join(app_owners).where(app_owners.c.user_id == bindparam("viewer_id")),
}
_ONE_APP = {superadmin: query.where(App.id == bindparam("app_id")) for superadmin, query in VISIBLE_APPS.items()}
# The same, with the app's subscriptions in the same read (the billing page shows the live one or how the last
# ended): a lazy load after it was a second read, and built its statement's cache key again each time.
_ONE_APP_WITH_SUBSCRIPTIONS = {superadmin: query.options(joinedload(App.subscriptions))
                               for superadmin, query in _ONE_APP.items()}


def visible_apps(user: User) -> Select:
    """A select of the apps ``user`` may see: all for a superadmin, their own for an owner.

    Run it with ``viewer(user)`` as its parameters."""
    return VISIBLE_APPS[bool(user.is_superadmin)]


def viewer(user: User) -> dict[str, int]:
    """The parameters ``visible_apps(user)`` runs with."""
    return {"viewer_id": user.id}


def get_app_or_404(app_id: int, user: Optional[User] = None, *, with_subscriptions: bool = False) -> App:
    """The app, when ``user`` (default: the signed-in one; the API passes its token's) may see it; else a 404.

    ``with_subscriptions``: ``app.subscriptions`` are read with it, for a view that shows them."""
    who = user if user is not None else current_user
    # The app and the right to see it in one read (visible_apps' rule), rather than loading its owners to check.
    app = None
    if is_id(app_id):
        statements = _ONE_APP_WITH_SUBSCRIPTIONS if with_subscriptions else _ONE_APP
        # unique(): the joined subscriptions make one row each; one_or_none() reads them all (first() would cut
        # the collection short).
        app = db.session.scalars(statements[bool(who.is_superadmin)],
                                 {**viewer(who), "app_id": app_id}).unique().one_or_none()
    if app is None:
        abort(404)
    refuse_changes_when_read_only(app)
    return app

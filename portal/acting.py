"""A superadmin on a customer's app: read-only by default, acting only after an explicit, audited step.

A superadmin may open any app's pages (``portal.tenancy``) but, on an app they do not own, every
change (cancel, upgrade, which charges the customer's card, change card, pay) is refused until they
press "Act as administrator" and give a reason. That step, and its end, go to the audit trail; it
lasts 30 minutes and covers that one app only. Every page of the app says which of the two modes
the superadmin is in.
"""
from __future__ import annotations

import time

from flask import Blueprint, Flask, flash, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import Forbidden

from billing import audit
from billing.models import App
from portal.auth.session import superadmin_required
from portal.extensions import db
from portal.request_context import request_origin

bp = Blueprint("acting", __name__)

ACTING_FOR_SECONDS = 30 * 60
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_KEY = "acting_for"


def is_admin_view(app: App) -> bool:
    """A superadmin looking at an app they do not own."""
    return bool(current_user.is_authenticated and current_user.is_superadmin and not app.is_owned_by(current_user))


def is_acting_for(app: App) -> bool:
    acting = session.get(_KEY) or {}
    return acting.get("app_id") == app.id and acting.get("until", 0) > time.time()


def is_read_only(app: App) -> bool:
    """True when the signed-in user may look at ``app`` but not change anything on it."""
    return is_admin_view(app) and not is_acting_for(app)


def refuse_changes_when_read_only(app: App) -> None:
    """Called for every app a view loads: a change by a superadmin who is not acting for the app is a 403."""
    if request.method not in SAFE_METHODS and is_read_only(app):
        refused = Forbidden(_("You are viewing this app as an administrator, read-only. Press “Act as "
                              "administrator” on its page first."))
        refused.read_only = True  # the error page shows this description (werkzeug's own are English)
        raise refused


def _app_or_404(app_id: int) -> App:
    app = db.get_or_404(App, app_id)
    return app


def _record(app: App, action: str, after: dict) -> None:
    audit.record(db.session, action=action, object_type="app", object_id=app.id, app_id=app.id,
                 after=after, origin=request_origin())


def _back(app: App):
    target = request.form.get("next", "")
    own = f"/apps/{app.id}"
    return redirect(target if target == own or target.startswith(own + "/") else url_for("subscriptions.billing",
                                                                                         app_id=app.id))


@bp.post("/apps/<int:app_id>/act-as")
@superadmin_required
def start(app_id: int):
    """Start acting as administrator on one customer's app, with a reason (audited)."""
    app = _app_or_404(app_id)
    reason = " ".join(request.form.get("reason", "").split())[:500]
    if not reason:
        flash(_("Say why you need to act on this customer's billing."), "error")
        return _back(app)
    session[_KEY] = {"app_id": app.id, "until": time.time() + ACTING_FOR_SECONDS}
    _record(app, "admin.acting.started", {"reason": reason, "minutes": ACTING_FOR_SECONDS // 60})
    db.session.commit()
    flash(_("You are acting as administrator on %(app)s for 30 minutes. Every change is recorded under your name.",
            app=app.name), "warning")
    return _back(app)


@bp.post("/apps/<int:app_id>/act-as/stop")
@superadmin_required
def stop(app_id: int):
    """Go back to read-only on this app (audited)."""
    app = _app_or_404(app_id)
    if is_acting_for(app):
        session.pop(_KEY, None)
        _record(app, "admin.acting.stopped", {})
        db.session.commit()
    flash(_("Back to read-only."), "info")
    return _back(app)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals.update(is_admin_view=is_admin_view, is_acting_for=is_acting_for,
                                 is_read_only=is_read_only)

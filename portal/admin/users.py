"""Superadmin actions on a person: revoking every session of a user (a lost laptop, a departed employee)."""
from __future__ import annotations

import logging

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _

from billing import audit
from billing.models import User
from portal.admin.routes import bp
from portal.auth.session import superadmin_required
from portal.extensions import db
from portal.redirects import is_safe_redirect
from portal.request_context import request_origin

log = logging.getLogger(__name__)


@bp.post("/users/<int:user_id>/sessions/revoke")
@superadmin_required
def revoke_sessions(user_id: int):
    """Sign the user out of every browser: their session and remember-me cookies stop working at once."""
    user = db.session.get(User, user_id) or abort(404)
    user.revoke_sessions()
    origin = request_origin()
    audit.record(db.session, action="user.sessions_revoked", object_type="user", object_id=user.id, app_id=None,
                 before=None, after={"email": user.email}, origin=origin)
    db.session.commit()
    log.info("superadmin %s revoked the sessions of user %s", origin.actor_user_id, user.id)
    flash(_("Every session of %(email)s was signed out.", email=user.email), "success")
    back = request.form.get("next", "")
    return redirect(back if is_safe_redirect(back) and back.startswith("/admin") else url_for("admin.tenants"))

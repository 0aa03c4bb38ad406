"""Loading the signed-in user and the helpers views use to require a role."""
from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required, logout_user
from sqlalchemy import bindparam, select

from billing.models import User
from portal.extensions import db


# Every signed-in request runs it: the statement is built once (building one costs more than SQLite running it).
_BY_SESSION_TOKEN = select(User).where(User.session_token == bindparam("token"))


def load_user(session_token: str) -> User | None:
    """The user whose current session token the cookie names (``User.get_id``); a revoked one names nobody."""
    if not session_token or len(session_token) > 64:
        return None
    user = db.session.scalar(_BY_SESSION_TOKEN, {"token": session_token})
    return user if user and user.active else None


def sign_out_everywhere(user: User) -> None:
    """End this browser's session and every other one of ``user`` (the caller commits)."""
    user.revoke_sessions()
    logout_user()


def superadmin_required(view):
    """Signed-in superadmins only; anyone else gets a 404, as if the page did not exist."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_superadmin:
            abort(404)
        return view(*args, **kwargs)

    return wrapper

"""Loading the signed-in user and the helpers views use to require a role."""
from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required

from billing.models import User
from portal.extensions import db


def load_user(user_id: str) -> User | None:
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    return user if user and user.active else None


def superadmin_required(view):
    """Signed-in superadmins only; anyone else gets a 404, as if the page did not exist."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_superadmin:
            abort(404)
        return view(*args, **kwargs)

    return wrapper

"""Who is calling the JSON API: a signed-in browser (session cookie, CSRF header) or a bearer token.

Tokens look like ``kbp_<random>``; only their SHA-256 is stored. A token acts as
its user, with the same tenant isolation as the browser.
"""
from __future__ import annotations

import hashlib
import secrets
from functools import wraps

from flask import Request, current_app, g, request
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing import clock
from billing.models import ApiToken, User
from portal.errors import json_error
from portal.extensions import csrf, db

TOKEN_PREFIX = "kbp_"
ACCEPTS_BEARER = "accepts_bearer_token"  # set on the views api_auth_required wraps


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, name: str) -> str:
    """Create a token for ``user``; the plain token is returned once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name, prefix=token[:12], token_hash=hash_token(token)))
    return token


def load_user_from_bearer(request: Request) -> User | None:
    """Flask-Login's request loader: the user of a valid ``Authorization: Bearer kbp_...`` token.

    Only views marked by ``api_auth_required`` take tokens; pages never do (a browser signs in).
    Flask-Login asks only when the request carries no signed-in session: a session's user comes
    first, and is then held to CSRF as a form is.
    """
    view = current_app.view_functions.get(request.endpoint or "")
    header = request.headers.get("Authorization", "")
    if not getattr(view, ACCEPTS_BEARER, False) or not header.startswith("Bearer "):
        return None
    token = header.removeprefix("Bearer ").strip()
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token),
                                                   ApiToken.revoked_at.is_(None)))
    if row is None or not row.user.active:
        return None
    row.last_used_at = clock.now()
    db.session.commit()
    g.bearer_token = True
    return row.user


def api_user() -> User | None:
    """The user behind this API request, set by ``api_auth_required``."""
    return g.get("api_user")


def api_auth_required(view):
    """401 JSON unless the request carries a valid bearer token or a signed-in session.

    Token requests are exempt from CSRF (no cookie is involved); session requests
    must send the CSRF token in ``X-CSRFToken``, as a form would.
    """

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:  # neither a session nor a token (load_user_from_bearer)
            return json_error(401, "Authentication required")
        if not g.get("bearer_token"):
            # protect() checks even when CSRF is switched off, so honour the switch as Flask-WTF's own hook does.
            if request.method not in ("GET", "HEAD", "OPTIONS") and current_app.config.get("WTF_CSRF_ENABLED", True):
                csrf.protect()
        g.api_user = current_user._get_current_object()
        return view(*args, **kwargs)

    setattr(wrapper, ACCEPTS_BEARER, True)
    # Bearer calls carry no cookie, so CSRF does not apply to them; session calls are checked above.
    return csrf.exempt(wrapper)

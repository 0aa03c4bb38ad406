"""What every view that changes something needs from its request: who acts, under which
correlation id, and the double-submit token its form carried."""
from __future__ import annotations

import re
import secrets
import uuid

from flask import abort, g, request
from flask_login import current_user

from billing.audit import Origin
from billing.models import User

_ATTEMPT = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def request_id() -> str:
    """This request's correlation id: the proxy's X-Request-Id when sane, a fresh one otherwise."""
    if "request_id" not in g:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.match(given) else f"req_{uuid.uuid4().hex}"
    return g.request_id


def origin_for(user: User) -> Origin:
    return Origin(actor="user", correlation_id=request_id(), actor_user_id=user.id)


def request_origin() -> Origin:
    """The signed-in user, for the audit trail."""
    return origin_for(current_user)


def new_attempt() -> str:
    """A token rendered into a form; the form's submit uses it as its idempotency key."""
    return secrets.token_urlsafe(16)


def is_attempt(value: str | None) -> bool:
    return bool(value) and _ATTEMPT.match(value) is not None


def attempt_from(value: str | None) -> str:
    """The form's attempt token, or a 400 when it is missing or malformed."""
    if not is_attempt(value):
        abort(400, description="missing or malformed attempt token")
    return value

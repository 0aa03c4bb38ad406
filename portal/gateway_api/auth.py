"""Service-key authentication for the gateway API: ``Authorization: Bearer kgw_...``, scoped per operation."""
from __future__ import annotations

from dataclasses import dataclass
from functools import wraps

from flask import g, request

from billing import clock
from billing.service_keys import authenticate
from portal.errors import json_error
from portal.extensions import db


@dataclass(frozen=True)
class Caller:
    """The key behind this request, as plain values (nothing here lazy-loads during a gateway call)."""

    key_id: int
    app_id: int


def caller() -> Caller:
    return g.gateway_caller


def service_key_required(scope: str):
    """401 without a live key, 403 when the key does not allow ``scope``.

    Not Flask-Login's request loader (which the JSON API's user tokens use): a service key is an app's,
    not a person's, so it is no ``current_user``, and which operation it may call is checked per view.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            key = authenticate(db.session, header.removeprefix("Bearer ").strip()) \
                if header.startswith("Bearer ") else None
            if key is None:
                db.session.rollback()
                return json_error(401, "A valid service key is required (Authorization: Bearer kgw_...).",
                                  "unauthenticated")
            if scope not in (key.scopes or []):
                db.session.rollback()
                return json_error(403, f"This service key may not call {scope}.", "scope_missing")
            key.last_used_at = clock.now()
            g.gateway_caller = Caller(key.id, key.app_id)
            db.session.commit()  # end the transaction: handlers call the gateway with none open
            return view(*args, **kwargs)

        return wrapper

    return decorator

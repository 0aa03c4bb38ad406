"""Error pages: HTML for people, JSON for the API and the webhook endpoint."""
from __future__ import annotations

from typing import Any, Optional

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from portal.extensions import db

JSON_PREFIXES = ("/api/", "/webhooks/")


def error_body(status: int, message: str, reason: Optional[str] = None, **extra: Any) -> dict[str, Any]:
    """The one JSON error body: ``{"error": {"code": 409, "message": "...", "reason": "live_subscription"}}``.

    ``reason`` is a stable machine-readable word, ``message`` is for people; ``extra`` adds fields
    (the Gateway API's ``fields`` of an invalid request, its ``decline_code`` or ``reference``).
    Every JSON error says it this way: the API's, the Gateway API's (also the answers it stores for a
    replay) and the webhook endpoint's.
    """
    body: dict[str, Any] = {"code": status, "message": message}
    if reason:
        body["reason"] = reason
    body.update(extra)
    return {"error": body}


def json_error(status: int, message: str, reason: Optional[str] = None, **extra: Any) -> tuple[Response, int]:
    """``error_body`` as a Flask response."""
    return jsonify(error_body(status, message, reason, **extra)), status


def wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES) or request.accept_mimetypes.best == "application/json"


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if wants_json():
            return json_error(error.code or 500, error.description or "")
        return render_template("errors/error.html", error=error), error.code

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        # Whatever half-done work the request left in the session must not be committed later.
        db.session.rollback()
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return json_error(500, "Internal error")
        return render_template("errors/error.html", error=None, message=_("Something went wrong.")), 500

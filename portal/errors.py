"""Error pages: HTML for people, JSON for the API and the webhook endpoint."""
from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from portal.extensions import db

JSON_PREFIXES = ("/api/", "/webhooks/")


def wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES) or request.accept_mimetypes.best == "application/json"


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if wants_json():
            return jsonify(error={"code": error.code, "message": error.description}), error.code
        return render_template("errors/error.html", error=error), error.code

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        # Whatever half-done work the request left in the session must not be committed later.
        db.session.rollback()
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return jsonify(error={"code": 500, "message": "Internal error"}), 500
        return render_template("errors/error.html", error=None, message=_("Something went wrong.")), 500

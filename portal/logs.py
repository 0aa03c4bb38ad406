"""Log lines: JSON objects one per line in production, the human format in development.

``LOG_FORMAT`` picks (``json`` or ``text``; by default ``json`` when
``PORTAL_ENV=production``). Every line carries the correlation id of what it
belongs to: the Stripe event id inside a webhook job (billing/webhooks/correlation.py),
the request id (``X-Request-Id`` or a fresh one) inside a request, and that same id
inside the jobs a request enqueued (``portal/queue.py`` hands it over in the job's
meta; ``jobs/context.py`` puts it back). Lines written with ``extra={"event": ...}``
(webhook received/applied, payment attempt, subscription status change, 502
answered) become fields of their own.

Whatever the format, ``billing.redaction`` runs on the whole finished line, so card
numbers, CVCs and secrets are removed from the message, the extra fields and the
exception's traceback alike.
"""
from __future__ import annotations

import logging

from flask import Flask, request
from pythonjsonlogger.json import JsonFormatter

from billing import redaction
from billing.webhooks import correlation

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
log = logging.getLogger("portal.requests")


class RedactedJsonFormatter(JsonFormatter):
    """python-json-logger's formatter, its finished line passed through the redaction."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                         json_default=str)

    def format(self, record: logging.LogRecord) -> str:
        return redaction.redact(super().format(record))


class RedactedTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redaction.redact(super().format(record))


def formatter_for(log_format: str) -> logging.Formatter:
    return RedactedJsonFormatter() if log_format == "json" else RedactedTextFormatter(TEXT_FORMAT)


def configure(log_format: str) -> None:
    """Give the root logger our handler, to stderr in ``log_format``, unless something else (pytest, a host's own
    logging set-up) configured logging first; the redaction filter goes on every root handler either way."""
    correlation.install()
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if getattr(handler, "kbp_handler", False)]
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.kbp_handler = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        ours = [handler]
    for handler in ours:
        handler.setFormatter(formatter_for(log_format))
    redaction.install()


def init_app(app: Flask) -> None:
    """Correlation ids for requests, and one line for each 502 the portal answers."""
    from portal.request_context import request_id

    @app.before_request
    def correlate_request():
        correlation.install()
        request.environ["kbp.correlation_token"] = correlation.enter(request_id())

    @app.teardown_request
    def end_correlation(_error=None):
        token = request.environ.pop("kbp.correlation_token", None)
        if token is not None:
            correlation.leave(token)

    @app.after_request
    def log_bad_gateway(response):
        if response.status_code == 502:
            log.warning("answered 502 to %s %s", request.method, request.path,
                        extra={"event": "http.502", "method": request.method, "path": request.path,
                               "http_status": 502})
        return response

"""The bare webhook endpoint the benchmark compares the portal with: the practical limit of this stack.

A WSGI app with nothing but what any Stripe webhook endpoint must do: read the
body, verify the signature, parse the event and INSERT one row into the same
PostgreSQL table, then answer 200. No Flask, no ORM, no queue, no rate limit. It
runs under the same gunicorn settings as the portal (``bench/webhooks.py`` starts it).
"""
from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone

import psycopg

from billing.webhooks.signature import SignatureError, verify

SECRETS = [s for s in os.environ.get("STRIPE_KERNEL_WEBHOOK_SECRET", "").split(",") if s]
CONNINFO = os.environ["BARE_CONNINFO"]
INSERT = ("INSERT INTO processed_webhooks (event_id, type, object_id, created, livemode, payload, status, attempts,"
          " received_at) VALUES (%s, %s, %s, %s, %s, %s, 'received', 0, %s)")
_local = threading.local()


def _connection() -> psycopg.Connection:
    connection = getattr(_local, "connection", None)
    if connection is None or connection.closed:
        connection = _local.connection = psycopg.connect(CONNINFO, autocommit=True)
    return connection


def app(environ, start_response):
    if environ["REQUEST_METHOD"] != "POST":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"bare webhook endpoint"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    try:
        verify(body, environ.get("HTTP_STRIPE_SIGNATURE"), SECRETS)
        event = json.loads(body)
    except (SignatureError, ValueError):
        start_response("400 Bad Request", [("Content-Type", "application/json")])
        return [b'{"error": "bad request"}']
    try:
        _connection().execute(INSERT, (event["id"], event["type"], event["data"]["object"].get("id"),
                                       event["created"], event["livemode"], body.decode(),
                                       datetime.now(timezone.utc)))
    except psycopg.errors.UniqueViolation:
        pass  # a duplicate: acknowledged
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"received": true}']

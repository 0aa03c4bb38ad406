"""POST /billing/webhooks/<gateway>: signed events per gateway.

``stripe`` goes through the same receive function as ``/webhooks/kernel/stripe``
(Stripe's signature, the inbox, the processing job). A generic gateway named in
``GATEWAY_WEBHOOK_SECRETS`` signs the raw body with HMAC-SHA256 under its secret in
``X-Gateway-Signature`` (hex); its events are kept once per id. An unsigned or
badly signed event gets 400 and nothing is written; an unknown gateway 404.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging

from flask import Response, current_app, request

from billing.db import insert_once
from billing.models import GatewayWebhookEvent
from portal.extensions import db
from portal.errors import json_error
from portal.gateway_api.routes import bp
from portal.webhooks.endpoint import receive

log = logging.getLogger(__name__)


def signature_ok(secret: str, body: bytes, given: str) -> bool:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given.strip().lower().removeprefix("sha256="))


@bp.post("/webhooks/<gateway_name>")
def gateway_webhook(gateway_name: str):
    """Receive one signed event from ``gateway_name``."""
    if gateway_name == "stripe":
        answer = receive(current_app._get_current_object(), request.environ)
        return Response(answer.body, status=answer.status, headers=list(answer.headers),
                        content_type="application/json")
    secret = current_app.config.get("GATEWAY_WEBHOOK_SECRETS", {}).get(gateway_name)
    if not secret:
        return json_error(404, f"Unknown gateway {gateway_name!r}.", "not_found")
    body = request.get_data(cache=False)
    if not signature_ok(secret, body, request.headers.get("X-Gateway-Signature", "")):
        log.warning("gateway webhook refused (%s): bad or missing signature", gateway_name)
        return json_error(400, "Missing or invalid X-Gateway-Signature.", "bad_signature")
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        event = None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event["id"] \
            or len(event["id"]) > 255:
        return json_error(400, 'The body must be a JSON object with a string "id".', "malformed_event")
    kind = event.get("type") if isinstance(event.get("type"), str) else None
    # False: a retry of an event we hold; acknowledged, kept once.
    insert_once(db.session, GatewayWebhookEvent(gateway=gateway_name, event_id=event["id"],
                                                type=(kind or "")[:128] or None, payload=body.decode()))
    db.session.commit()
    return {"received": True}, 200

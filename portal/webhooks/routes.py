"""POST /webhooks/kernel/stripe: verify, record, enqueue, answer.

Nothing here waits for the handler. The order is fixed: the size is checked before
the body is read, the signature before the body is parsed, and the event is
recorded before its job is queued, so a request that fails any check writes
nothing, and an event acknowledged with 200 is always in ``processed_webhooks``
with a job on its way.
"""
from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, current_app, request
from redis.exceptions import RedisError

from billing.webhooks.events import Event, MalformedEvent
from billing.webhooks.signature import SignatureError, verify
from jobs.queues import redis_connection
from portal.extensions import csrf, limiter
from portal.payments import gateway
from portal.webhooks.queueing import enqueue_processing

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

MAX_BODY_BYTES = 256 * 1024  # Stripe's events are a few KiB; a larger body is not one of them
# Per sending address. Stripe delivers from a dozen addresses and retries anything it is
# refused with a 429, so this stops a flood without ever losing an event (docs/webhooks.md).
DEFAULT_RATE_LIMIT = "6000 per minute"
REJECTED_KEY = "webhooks:rejected:{}"
DUPLICATES_KEY = "webhooks:duplicates"
INBOX = "webhook_inbox"
_ACK = b'{"received": true}'


def rate_limit() -> str:
    return current_app.config.get("WEBHOOK_RATE_LIMIT") or DEFAULT_RATE_LIMIT


def _count(key: str) -> None:
    try:
        redis_connection(current_app.config["REDIS_URL"]).incr(key)
    except RedisError:  # a counter is never a reason to answer differently
        log.warning("could not count %s", key)


def _answer(status: int, body: bytes) -> Response:
    return Response(body, status=status, mimetype="application/json")


def _reject(reason: str, message: str, status: int = 400) -> Response:
    _count(REJECTED_KEY.format(reason))
    log.warning("webhook refused (%s): %s", reason, message)
    return _answer(status, json.dumps({"error": {"code": status, "reason": reason, "message": message}}).encode())


@bp.post("/webhooks/kernel/stripe")
@limiter.limit(rate_limit)
def stripe():
    """Receive one Stripe event: verify its signature, record it once, queue its processing, acknowledge."""
    limit = current_app.config.get("WEBHOOK_MAX_BYTES", MAX_BODY_BYTES)
    if request.content_length is not None and request.content_length > limit:
        return _reject("too_large", f"the body is larger than {limit} bytes", 413)
    payload = request.stream.read(limit + 1)
    if len(payload) > limit:
        return _reject("too_large", f"the body is larger than {limit} bytes", 413)

    try:
        verify(payload, request.headers.get("Stripe-Signature"), current_app.config["STRIPE_KERNEL_WEBHOOK_SECRETS"])
        event = Event.parse(payload)
    except (SignatureError, MalformedEvent) as error:
        return _reject(error.reason, str(error))

    # An event of the other mode (a test event reaching the live portal) is kept for the record only.
    other_mode = event.livemode != gateway().livemode
    inbox = current_app.extensions[INBOX]
    if not inbox.record(event, payload.decode("utf-8"), ignored=other_mode):
        _count(DUPLICATES_KEY)
        return _answer(200, _ACK)  # already recorded: processed once, by the first copy's job
    if not other_mode:
        try:
            enqueue_processing(event.id)
        except RedisError:
            # Without a job the event would sit unprocessed behind a 200; refuse it instead so
            # Stripe delivers it again, and drop the row so that delivery records it afresh.
            log.exception("could not queue %s; asking Stripe to deliver it again", event.id)
            inbox.forget(event.id)
            return _answer(503, b'{"error": {"code": 503, "message": "try again later"}}')
    return _answer(200, _ACK)


csrf.exempt(stripe)

"""Superadmin pages: Stripe events received by the webhook endpoint, their payloads, and replaying them."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from redis.exceptions import RedisError
from sqlalchemy import func, select

from billing.models import AuditLog, ProcessedWebhook, WebhookStatus
from billing.webhooks.backlog import backlog
from billing.webhooks.processing import request_replay, why_ignored
from jobs.queues import redis_connection
from portal.admin.routes import bp
from portal.auth.session import superadmin_required
from portal.extensions import db
from portal.pagination import paginate
from portal.payments import gateway
from portal.webhooks.apply import process_event
from portal.webhooks.routes import DUPLICATES_KEY, REJECTED_KEY

log = logging.getLogger(__name__)
PER_PAGE = 50
# A received event still waiting after this long means no worker is applying events (or they are far behind).
STUCK_AFTER = timedelta(minutes=10)
FILTERS = ("failed", "stuck", "received", "processed", "ignored", "all")
REPLAYABLE = (WebhookStatus.FAILED, WebhookStatus.RECEIVED, WebhookStatus.IGNORED)


def _stuck_before() -> datetime:
    return datetime.now(timezone.utc) - STUCK_AFTER


def _counters() -> dict | None:
    """Refused deliveries by reason, and duplicates, from Redis; None when Redis cannot be read."""
    try:
        connection = redis_connection(current_app.config["REDIS_URL"])
        prefix = REJECTED_KEY.format("")
        keys = sorted(key.decode() for key in connection.scan_iter(match=prefix + "*"))
        values = connection.mget(keys) if keys else []
        rejected = {key[len(prefix):]: int(value or 0) for key, value in zip(keys, values)}
        return {"rejected": rejected, "duplicates": int(connection.get(DUPLICATES_KEY) or 0)}
    except RedisError:
        log.warning("could not read the webhook counters from Redis")
        return None


@bp.get("/events")
@superadmin_required
def events():
    """Received Stripe events: the failed ones when there are any, else all; filter by status and type."""
    shown = request.args.get("status")
    if shown not in FILTERS:
        has_failed = db.session.scalar(select(ProcessedWebhook.id).where(
            ProcessedWebhook.status == WebhookStatus.FAILED).limit(1)) is not None
        shown = "failed" if has_failed else "all"
    event_type = (request.args.get("type") or "").strip()[:100]  # as the field allows
    query = select(ProcessedWebhook).order_by(ProcessedWebhook.received_at.desc(), ProcessedWebhook.id.desc())
    if shown == "stuck":
        query = query.where(ProcessedWebhook.status == WebhookStatus.RECEIVED,
                            ProcessedWebhook.received_at < _stuck_before())
    elif shown != "all":
        query = query.where(ProcessedWebhook.status == WebhookStatus(shown))
    if event_type:
        query = query.where(ProcessedWebhook.type.startswith(event_type, autoescape=True))
    by_status = dict(db.session.execute(select(ProcessedWebhook.status, func.count(ProcessedWebhook.id))
                                        .group_by(ProcessedWebhook.status)).all())
    stuck = db.session.scalar(select(func.count(ProcessedWebhook.id)).where(
        ProcessedWebhook.status == WebhookStatus.RECEIVED, ProcessedWebhook.received_at < _stuck_before()))
    queue = backlog(db.session)
    pagination = paginate(query, request.args.get("page", type=int), PER_PAGE)
    return render_template("admin/events.html", pagination=pagination, shown=shown, event_type=event_type,
                           by_status={status.value: count for status, count in by_status.items()}, stuck=stuck,
                           counters=_counters(), filters=FILTERS, replayable=REPLAYABLE, waiting=queue.waiting,
                           oldest_age=queue.oldest_age)


@bp.get("/events/<int:event_id>")
@superadmin_required
def event(event_id: int):
    """One event: what Stripe sent, what became of it, and every change it caused."""
    row = db.get_or_404(ProcessedWebhook, event_id)
    try:
        payload = json.dumps(json.loads(row.payload), indent=2, sort_keys=True)
    except ValueError:
        payload = row.payload
    changes = db.session.scalars(select(AuditLog).where(AuditLog.correlation_id == row.event_id)
                                 .order_by(AuditLog.id)).all()
    ignored_because = why_ignored(row, gateway().livemode) if row.status == WebhookStatus.IGNORED else None
    return render_template("admin/events_detail.html", row=row, payload=payload, changes=changes,
                           ignored_because=ignored_because, replayable=row.status in REPLAYABLE)


@bp.post("/events/<int:event_id>/replay")
@superadmin_required
def replay_event(event_id: int):
    """Process a failed, stuck or ignored event again (its handler is idempotent)."""
    row = db.get_or_404(ProcessedWebhook, event_id)
    if row.status not in REPLAYABLE:
        flash(_("This event was already processed."), "info")
        return redirect(url_for("admin.event", event_id=row.id))
    request_replay(db.session, row, user_id=current_user.id)
    stripe_event_id = row.event_id
    db.session.commit()
    if not current_app.config["RQ_ASYNC"]:  # no worker (tests): applied now, as a worker would
        process_event(stripe_event_id)
    db.session.expire_all()
    current = db.session.get(ProcessedWebhook, event_id)
    if current.status == WebhookStatus.PROCESSED:
        flash(_("Event processed."), "success")
    elif current.status == WebhookStatus.FAILED:
        flash(_("The event failed again: %(error)s", error=current.last_error or ""), "error")
    else:
        flash(_("Event queued for processing."), "success")
    return redirect(url_for("admin.event", event_id=event_id))

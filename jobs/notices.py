"""The notices job: every five minutes, the outbox's pending messages go out (``billing.mail``)."""
from __future__ import annotations

from typing import Optional

from flask import current_app

from billing.mail import send_pending_messages
from jobs.context import in_app_context
from portal.extensions import db


@in_app_context
def send_pending() -> Optional[dict]:
    """The scheduled job (every five minutes)."""
    config = current_app.config
    run = send_pending_messages(db.session, config.get("SMTP_URL", ""), config.get("MAIL_FROM", ""))
    return None if run is None else {"run": run.id, "processed": run.processed, "failed": run.failed}

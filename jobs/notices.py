"""The notices job: every five minutes, the outbox's pending messages go out (``billing.mail``), each written
from its template in its recipient's language (``portal.notices.rendering``)."""
from __future__ import annotations

from typing import Optional

from flask import current_app

from billing.mail import send_pending_messages
from jobs.context import in_app_context
from portal.extensions import db
from portal.notices.rendering import for_recipient


@in_app_context
def send_pending() -> Optional[dict]:
    """The scheduled job (every five minutes)."""
    config = current_app.config
    run = send_pending_messages(db.session, config.get("SMTP_URL", ""), config.get("MAIL_FROM", ""),
                                render=for_recipient)
    return None if run is None else {"run": run.id, "processed": run.processed, "failed": run.failed}

"""The alert rules' evaluation (``billing/alert_rules.py``), every minute."""
from __future__ import annotations

import logging

from flask import current_app

from billing import clock
from billing.alert_rules import evaluate
from jobs.context import in_app_context

log = logging.getLogger(__name__)


@in_app_context
def evaluate_rules() -> dict:
    """Raise what fires, resolve what cleared; one transaction."""
    from portal.extensions import db

    clock.refresh()
    result = evaluate(db.session, clock.now(), smtp_configured=bool(current_app.config.get("SMTP_URL")))
    db.session.commit()
    summary = {"raised": [a.kind for a in result.raised], "kept": len(result.kept),
               "resolved": [a.kind for a in result.resolved]}
    if result.raised or result.resolved:
        log.info("alert rules: %s", summary)
    return summary

"""The kill switch as the portal shows it: the banner on every page while billing is paused, the answer to a
refused action, queuing held events again on resume, and the gateway mode recorded at start-up.

The rule itself lives in ``billing/control.py``; the superadmin pages are in
``portal/admin/control.py`` and the commands in ``portal/ops_cli.py``.
"""
from __future__ import annotations

import getpass
import logging
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from flask import Flask, flash, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import inspect, select
from sqlalchemy.exc import SQLAlchemyError

from billing import releases
from billing.control import BillingPaused, open_pause
from billing.models import BillingPauseApp
from billing.releases import Actor
from portal.config import ROOT
from portal.errors import json_error, wants_json
from portal.extensions import db
from portal.payments import gateway
from portal.request_context import request_id

log = logging.getLogger(__name__)

PAUSED_MESSAGE = _l("Billing is paused for maintenance, so nothing was changed or charged. "
                    "Your app keeps working; please try again later.")


@dataclass(frozen=True)
class PauseState:
    """What a page needs to know of an open pause."""

    since: datetime
    reason: str
    by: str
    resumed_apps: frozenset[int]

    def applies_to(self, app_id: Optional[int]) -> bool:
        return app_id is None or app_id not in self.resumed_apps


def pause_state() -> Optional[PauseState]:
    pause = open_pause(db.session)
    if pause is None:
        return None
    resumed = frozenset(db.session.scalars(select(BillingPauseApp.app_id).where(BillingPauseApp.pause_id == pause.id)))
    return PauseState(since=pause.paused_at, reason=pause.reason, by=pause.paused_by, resumed_apps=resumed)


def current_gateway_mode() -> str:
    instance = gateway()
    return releases.gateway_mode(sandbox=instance.sandbox, livemode=instance.livemode)


def request_actor() -> Actor:
    """The signed-in superadmin, for the ledger and the audit trail."""
    return Actor(who=current_user.email, kind="user", user_id=current_user.id, correlation_id=request_id())


def cli_actor(by: Optional[str] = None) -> Actor:
    """Whoever runs a command: ``--by`` when given, the login otherwise."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return Actor(who=(by or "").strip() or f"cli:{login}", kind="cli")


def git_revision() -> Optional[str]:
    """The deployed revision: ``GIT_REVISION`` when the deploy sets it, else the checkout's HEAD."""
    if os.environ.get("GIT_REVISION"):
        return os.environ["GIT_REVISION"].strip()[:64]
    try:
        result = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def requeue(event_ids: list[str]) -> int:
    """Held events after a resume: still ``received``, so the workers apply them by themselves, oldest first,
    once (processed_webhooks is their queue). Without workers (``RQ_ASYNC`` off) they are applied here."""
    from flask import current_app

    from portal.webhooks.apply import process_event

    if current_app.config["RQ_ASYNC"]:
        return len(event_ids)
    for event_id in event_ids:
        process_event(event_id)
    return len(event_ids)


def record_gateway_mode_at_start(app: Flask) -> None:
    """The gateway's mode in the release ledger when it differs from the last one recorded.

    Skipped before the first migration (no ``releases`` table yet) and never stops a start.
    """
    with app.app_context():
        try:
            if not inspect(db.engine).has_table("releases"):
                return
            releases.record_gateway_mode(db.session, current_gateway_mode(), git_revision=git_revision())
            db.session.commit()
        except SQLAlchemyError as error:  # no database yet (first start): the next start records it
            db.session.rollback()
            log.warning("could not record the gateway mode in the release ledger: %s", error.__class__.__name__)
        finally:
            db.session.remove()


def init_app(app: Flask) -> None:
    @app.errorhandler(BillingPaused)
    def billing_paused(error: BillingPaused):
        db.session.rollback()
        if wants_json() or request.is_json:
            return json_error(409, str(PAUSED_MESSAGE), BillingPaused.code)
        flash(str(PAUSED_MESSAGE), "warning")
        app_id = (request.view_args or {}).get("app_id") or error.app_id
        if app_id is not None:
            return redirect(url_for("subscriptions.billing", app_id=app_id))
        return redirect(url_for("dashboard.index"))

    @app.context_processor
    def billing_pause_context():
        if not current_user.is_authenticated:
            return {}
        return {"billing_pause": pause_state()}

    if app.config.get("RECORD_GATEWAY_MODE", not app.config.get("TESTING")):
        record_gateway_mode_at_start(app)

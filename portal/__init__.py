"""Kernel Billing Portal: the Flask application factory."""
from __future__ import annotations

import logging
from typing import Any, Mapping

from flask import Flask, has_request_context, request
from werkzeug.middleware.proxy_fix import ProxyFix

from billing import metrics
from billing.db import configure_sqlite
from portal.config import ROOT, load_config
from portal import (
    acting, admin, api, auth, billing_details, cli, dashboard, errors, gateway_api, i18n, invoices, layout, logs,
    notices, ops, payments, security, subscriptions, urls, webhooks,
)
from portal import control
from portal.extensions import babel, csrf, db, limiter, migrate

log = logging.getLogger(__name__)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the portal. Settings come from the environment; ``config`` overrides them (tests)."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    app.config.update(load_config())
    if config:
        app.config.update(config)
    _configure_logging(app)
    urls.init_app(app)
    # Stripe's deliveries are answered ahead of Flask, inside ProxyFix (which then gives it the client's address).
    webhooks.mount(app)
    if app.config.get("TRUSTED_PROXIES"):
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    db.init_app(app)
    with app.app_context():
        configure_sqlite(db.engine, reads_first=_reading_request)
        metrics.record_conflicts_in(db.engine)  # Stripe's idempotency refusals, for the alert rule job
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)

    babel.init_app(app, locale_selector=i18n.select_locale)
    i18n.init_app(app)

    payments.init_app(app)
    auth.init_app(app)
    dashboard.init_app(app)
    subscriptions.init_app(app)
    billing_details.init_app(app)
    invoices.init_app(app)
    notices.init_app(app)
    api.init_app(app)
    gateway_api.init_app(app)
    webhooks.init_app(app)
    admin.init_app(app)
    acting.init_app(app)
    ops.init_app(app)
    errors.init_app(app)
    security.init_app(app)
    layout.init_app(app)
    cli.init_app(app)
    control.init_app(app)  # after the blueprints: it records the gateway mode at start-up

    log.info("Kernel Billing Portal starting (%s)", app.config["PORTAL_ENV"])
    return app


# Requests that read: their transactions start as a plain read on SQLite (billing.db.configure_sqlite).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _reading_request() -> bool:
    return has_request_context() and request.method in SAFE_METHODS


def _configure_logging(app: Flask) -> None:
    logs.configure(app.config.get("LOG_FORMAT", "text"))
    logs.init_app(app)
    # The SDK logs every request at INFO; our own lines say what was done and why.
    logging.getLogger("stripe").setLevel(logging.WARNING)

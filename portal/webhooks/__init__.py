"""POST /webhooks/kernel/stripe: verify, record, hand off, answer (served ahead of Flask, see endpoint.py)."""
from flask import Flask

from billing.webhooks.inbox import Inbox
from portal.extensions import db
from portal.webhooks import ratelimit
from portal.webhooks.endpoint import INBOX, StripeWebhookEndpoint, rate_limit
from portal.webhooks.routes import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    ratelimit.windows(rate_limit(app))  # a WEBHOOK_RATE_LIMIT that cannot be parsed stops the start
    with app.app_context():
        app.extensions[INBOX] = Inbox.for_engine(db.engine)


def mount(app: Flask) -> None:
    """Serve the endpoint from WSGI middleware in front of Flask (call before ProxyFix wraps the app)."""
    app.wsgi_app = StripeWebhookEndpoint(app, app.wsgi_app)

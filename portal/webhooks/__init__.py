"""POST /webhooks/kernel/stripe: verify, record, enqueue, answer."""
from flask import Flask

from billing.webhooks.inbox import Inbox
from portal.extensions import db
from portal.webhooks.routes import INBOX, bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    with app.app_context():
        app.extensions[INBOX] = Inbox.for_engine(db.engine)

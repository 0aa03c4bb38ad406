"""POST /webhooks/kernel/stripe: verify, record, enqueue, answer."""
from flask import Flask

from portal.webhooks.routes import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

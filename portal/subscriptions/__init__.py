"""An app's plan: checkout, upgrade, downgrade, cancel, resume, payment method."""
from flask import Flask

from portal.subscriptions.routes import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

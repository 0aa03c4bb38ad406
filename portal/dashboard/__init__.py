"""The owner's dashboard: their apps, each with its plan and status."""
from flask import Flask

from portal.dashboard.routes import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

"""The superadmin area: every tenant, subscription, invoice, alert and audit entry."""
from flask import Flask

from portal.admin.routes import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

"""An app's invoices: list, detail, links to Stripe's hosted page and PDF."""
from flask import Flask

from portal.invoices.routes import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

"""An app's invoices: list, detail, links to Stripe's hosted page and PDF."""
from flask import Flask

from portal.invoices.routes import FINALIZED, bp, finalized_invoices


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.extensions[FINALIZED] = finalized_invoices()  # one per app: what Stripe printed on finalized invoices

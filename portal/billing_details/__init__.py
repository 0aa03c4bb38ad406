"""An app's billing details (legal name, CPF or CNPJ, billing e-mail, address), edited by its owner."""
from typing import Optional

from flask import Flask

from billing.billing_details import details_of
from billing.models import App, AppBillingDetails
from billing.tax_ids import InvalidTaxId, parse_tax_id
from portal.billing_details.routes import bp
from portal.extensions import db


def billing_details_of(app: App) -> Optional[AppBillingDetails]:
    return details_of(db.session, app.id)


def formatted_tax_id(digits: Optional[str]) -> str:
    """``390.533.447-05`` / ``11.222.333/0001-81`` from digits (as stored, or as Stripe's invoice holds them)."""
    try:
        return parse_tax_id(digits or "").formatted
    except InvalidTaxId:
        return digits or ""


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["billing_details_of"] = billing_details_of
    app.jinja_env.filters["tax_id"] = formatted_tax_id

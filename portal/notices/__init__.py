"""Owner notices (the outbox), readable by the app's owners and superadmins, and paying during dunning."""
from flask import Flask, g

from billing.dunning import dunning_summary, outstanding_invoice
from portal.extensions import db
from portal.notices import rendering
from portal.notices.routes import bp


def billing_attention(app):
    """For the app pages' banner: the invoice to pay and its dunning, or None when all is paid.

    The banner and the billing page both ask while one page renders: read once per request.
    """
    known = g.setdefault("billing_attention", {})
    if app.id not in known:
        known[app.id] = _attention(app)
    return known[app.id]


def _attention(app):
    invoice = outstanding_invoice(db.session, app.id)
    if invoice is None:
        return None
    return {"invoice": invoice, "summary": dunning_summary(db.session, invoice)}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    rendering.init_app(app)
    app.jinja_env.globals["billing_attention"] = billing_attention

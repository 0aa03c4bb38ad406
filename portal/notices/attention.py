"""What an app's pages say about money owed: the banner, the notices page, a paused app's reason."""
from flask import g
from flask_babel import gettext as _

from billing.dunning import MAX_RETRIES, dunning_summary, outstanding_invoice
from billing.models import DunningOutcome
from portal.extensions import db


def billing_attention(app):
    """For the app pages' banner: the invoice to pay and its dunning, or None when all is paid.

    The banner and the page under it (billing, notices) both ask while one page renders: read once per request.
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


def pause_reason(app) -> str:
    """Why a paused app is paused, in the reader's language: dunning's reason is said from its unpaid invoice."""
    attention = billing_attention(app)  # the banner's read, not another one
    invoice = attention["invoice"] if attention else None
    if invoice is not None and invoice.dunning_outcome == DunningOutcome.EXHAUSTED:
        return _("the renewal payment of invoice %(invoice)s failed %(count)s times and the subscription was "
                 "canceled", invoice=invoice.number or invoice.stripe_invoice_id, count=MAX_RETRIES + 1)
    return app.paused_reason or _("billing problem")

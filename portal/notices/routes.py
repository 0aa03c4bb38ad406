"""Owner notices (the outbox) and paying an open invoice during dunning.

Paying works in two legs, as Stripe's hosted pages want: Checkout in setup mode
saves a new card (no card data ever reaches the portal), then, back here, the
open invoice is paid with that card (``billing.owner_payments``: the views only
say what happened). Paying ends dunning at once; for an app paused after the last
retry it also reactivates the app.
"""
from __future__ import annotations

import logging

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import select

from billing import clock
from billing.dunning import DunningContext
from billing.errors import CardDeclined, GatewayError
from billing.models import CheckoutMode, KernelCheckoutSession
from billing.notifications import occasions, owner_notices
from billing.owner_payments import OwnerPayment, pay_with_saved_card
from billing.actions import Refused
from billing.subscriptions import start_payment_method_update
from portal.extensions import db
from portal.i18n import money
from portal.notices.attention import billing_attention
from portal.payments import gateway
from portal.redirects import external_url
from portal.request_context import is_attempt, new_attempt, request_origin
from portal.subscriptions.web import CONFIRMING, UNAVAILABLE, refusal_message
from portal.tenancy import get_app_or_404

log = logging.getLogger(__name__)

bp = Blueprint("notices", __name__)

NOTICES_SHOWN = 100


def _context() -> DunningContext:
    config = current_app.config
    clock.refresh()
    return DunningContext(gateway=gateway(), now=clock.now(), origin=request_origin(),
                          smtp_configured=bool(config.get("SMTP_URL")),
                          portal_base_url=config.get("PORTAL_BASE_URL", ""))


@bp.get("/apps/<int:app_id>/notices")
@login_required
def index(app_id: int):
    """The app's notices (dunning, receipts) and, during dunning, where it stands."""
    app = get_app_or_404(app_id)
    notices = occasions(owner_notices(db.session, app.id, limit=NOTICES_SHOWN))  # once, however many recipients
    attention = billing_attention(app)  # what the banner above shows too: read once
    return render_template("notices/index.html", app=app, notices=notices,
                           invoice=attention["invoice"] if attention else None,
                           summary=attention["summary"] if attention else None)


@bp.errorhandler(Refused)
def _on_refused(refused: Refused):
    """Another action on the app's billing is still waiting for Stripe (or billing is paused): nothing was done."""
    db.session.rollback()
    flash(refusal_message(refused), "warning")
    return redirect(url_for("notices.pay_open_invoice", app_id=get_app_or_404(request.view_args["app_id"]).id))


@bp.errorhandler(GatewayError)
def _on_gateway_error(error: GatewayError):
    """Paying fails in two ways, both with nothing charged: the card is declined, or Stripe is away."""
    db.session.rollback()
    app_id = request.view_args["app_id"]
    if isinstance(error, CardDeclined):
        log.info("owner payment for app %s declined (%s)", app_id, error.decline_code)
        flash(_("Your card was declined, so nothing was charged. Please try another card."), "error")
    else:
        log.exception("owner payment for app %s could not reach Stripe", app_id)
        flash(str(UNAVAILABLE), "error")
    return redirect(url_for("notices.pay_open_invoice", app_id=get_app_or_404(app_id).id))


@bp.route("/apps/<int:app_id>/pay", methods=["GET", "POST"])
@login_required
def pay_open_invoice(app_id: int):
    """Pay the app's open invoice with a new card (Checkout in setup mode), ending dunning."""
    app = get_app_or_404(app_id)
    attention = billing_attention(app)  # the banner's read
    invoice = attention["invoice"] if attention else None
    summary = attention["summary"] if attention else None
    if request.method == "GET":
        return render_template("notices/pay.html", app=app, invoice=invoice, summary=summary,
                               attempt=new_attempt())
    if invoice is None:
        flash(_("There is no open invoice to pay."), "info")
        return redirect(url_for("notices.index", app_id=app.id))
    attempt = request.form.get("attempt", "")
    if not is_attempt(attempt):
        flash(_("The form expired. Please try again."), "error")
        return render_template("notices/pay.html", app=app, invoice=invoice, summary=summary,
                               attempt=new_attempt()), 400
    # The same setup Checkout as a card update, coming back here to pay; a double submit
    # replays the same session (the attempt is its idempotency key).
    local = start_payment_method_update(
        db.session, gateway(), app, origin=request_origin(), attempt=f"pay:{attempt}", currency=invoice.currency,
        success_url=external_url("notices.pay_complete", app_id=app.id) + "?session_id={CHECKOUT_SESSION_ID}",
        cancel_url=external_url("notices.pay_open_invoice", app_id=app.id),
        submit_message=_("%(amount)s will be charged to this card for invoice %(number)s as soon as it is saved.",
                         amount=money(invoice.amount_remaining, invoice.currency),
                         number=invoice.number or invoice.stripe_invoice_id),
        locale=str(get_locale()))
    url = local.url
    db.session.commit()
    return redirect(url, code=303)


# What the owner reads once paying with the saved card ended, and where they go next.
OUTCOMES = {
    OwnerPayment.CARD_NOT_SAVED: (_l("Your card was not saved, so nothing was charged."), "warning",
                                  "notices.pay_open_invoice"),
    OwnerPayment.NOTHING_DUE: (_l("Your card was saved. There is nothing left to pay."), "success", "notices.index"),
    OwnerPayment.CONFIRMING: (CONFIRMING, "warning", "notices.index"),
    OwnerPayment.PAID: (_l("Payment received, thank you. Your new card will be used from now on."), "success",
                        "notices.index"),
}


@bp.get("/apps/<int:app_id>/pay/complete")
@login_required
def pay_complete(app_id: int):
    """Back from Checkout: make the new card the default and pay the open invoice with it."""
    app = get_app_or_404(app_id)
    session_id = request.args.get("session_id", "")
    local = db.session.scalar(select(KernelCheckoutSession).where(
        KernelCheckoutSession.stripe_session_id == session_id, KernelCheckoutSession.app_id == app.id,
        KernelCheckoutSession.mode == CheckoutMode.SETUP))
    if local is None:
        abort(404)
    outcome = pay_with_saved_card(db.session, _context(), app.id, session_id)
    message, category, endpoint = OUTCOMES[outcome]
    flash(str(message), category)
    return redirect(url_for(endpoint, app_id=app.id))

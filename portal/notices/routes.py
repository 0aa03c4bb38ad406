"""Owner notices (the outbox) and paying an open invoice during dunning.

Paying works in two legs, as Stripe's hosted pages want: Checkout in setup mode
saves a new card (no card data ever reaches the portal), then, back here, the
open invoice is paid with that card. Paying ends dunning at once; for an app
paused after the last retry it also reactivates the app.
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
from flask_login import login_required
from sqlalchemy import select

from billing import audit, charges, clock
from billing.checkout import complete_checkout
from billing.dunning import DunningContext, dunning_summary, outstanding_invoice, settle_if_in_dunning
from billing.errors import CardDeclined, GatewayError, GatewayUnavailable
from billing.gateway import pay_invoice_key
from billing.models import ChargeStatus, KernelCheckoutSession
from billing.notifications import owner_notices
from billing.subscriptions import start_payment_method_update
from billing.sync import sync_invoice
from portal.extensions import db
from portal.i18n import money
from portal.payments import gateway
from portal.redirects import external_url
from portal.request_context import is_attempt, new_attempt, request_origin
from portal.subscriptions.web import CONFIRMING, UNAVAILABLE
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
    notices = owner_notices(db.session, app.id, limit=NOTICES_SHOWN)
    invoice = outstanding_invoice(db.session, app.id)
    summary = dunning_summary(db.session, invoice) if invoice else None
    return render_template("notices/index.html", app=app, notices=notices, invoice=invoice, summary=summary)


@bp.route("/apps/<int:app_id>/pay", methods=["GET", "POST"])
@login_required
def pay_open_invoice(app_id: int):
    """Pay the app's open invoice with a new card (Checkout in setup mode), ending dunning."""
    app = get_app_or_404(app_id)
    invoice = outstanding_invoice(db.session, app.id)
    summary = dunning_summary(db.session, invoice) if invoice else None
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
    try:
        # The same setup Checkout as a card update, coming back here to pay; a double submit
        # replays the same session (the attempt is its idempotency key).
        local = start_payment_method_update(
            db.session, gateway(), app, origin=request_origin(), attempt=f"pay:{attempt}",
            success_url=external_url("notices.pay_complete", app_id=app.id)
            + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=external_url("notices.pay_open_invoice", app_id=app.id),
            submit_message=_("%(amount)s will be charged to this card for invoice %(number)s as soon as it is saved.",
                             amount=money(invoice.amount_remaining, invoice.currency),
                             number=invoice.number or invoice.stripe_invoice_id),
            locale=str(get_locale()))
        url = local.url
        db.session.commit()
    except GatewayError:
        db.session.rollback()
        log.exception("could not open a setup Checkout for app %s", app.id)
        flash(str(UNAVAILABLE), "error")
        return render_template("notices/pay.html", app=app, invoice=invoice, summary=summary,
                               attempt=new_attempt()), 502
    return redirect(url, code=303)


@bp.get("/apps/<int:app_id>/pay/complete")
@login_required
def pay_complete(app_id: int):
    """Back from Checkout: make the new card the default and pay the open invoice with it."""
    app = get_app_or_404(app_id)
    session_id = request.args.get("session_id", "")
    local = db.session.scalar(select(KernelCheckoutSession).where(
        KernelCheckoutSession.stripe_session_id == session_id, KernelCheckoutSession.app_id == app.id,
        KernelCheckoutSession.mode == "setup"))
    if local is None:
        abort(404)
    ctx = _context()
    try:
        result = complete_checkout(db.session, ctx.gateway, session_id, origin=ctx.origin, app_id=app.id,
                                   smtp_configured=ctx.smtp_configured)
        db.session.commit()
        if not result.is_complete:
            flash(_("Your card was not saved, so nothing was charged."), "warning")
            return redirect(url_for("notices.pay_open_invoice", app_id=app.id))
        invoice = outstanding_invoice(db.session, app.id)
        if invoice is None:
            flash(_("Your card was saved. There is nothing left to pay."), "success")
            return redirect(url_for("notices.index", app_id=app.id))
        card = (result.remote or ctx.gateway.retrieve_checkout_session(session_id)).setup_payment_method
        paid, charge = _pay(ctx, app, invoice.stripe_invoice_id, f"owner:{session_id}", card)
        if paid is None:
            flash(str(CONFIRMING), "warning")
            return redirect(url_for("notices.index", app_id=app.id))
    except CardDeclined as declined:
        db.session.rollback()
        log.info("owner payment for app %s declined (%s)", app.id, declined.decline_code)
        flash(_("Your card was declined, so nothing was charged. Please try another card."), "error")
        return redirect(url_for("notices.pay_open_invoice", app_id=app.id))
    except GatewayError:
        db.session.rollback()
        log.exception("owner payment for app %s could not reach Stripe", app.id)
        flash(str(UNAVAILABLE), "error")
        return redirect(url_for("notices.pay_open_invoice", app_id=app.id))
    sync_invoice(db.session, paid, observed_at=int(ctx.now.timestamp()), origin=ctx.origin,
                 refetch=lambda: ctx.gateway.retrieve_invoice(invoice.stripe_invoice_id))
    audit.record(db.session, action="invoice.paid_by_owner", object_type="kernel_invoice",
                 object_id=invoice.stripe_invoice_id, app_id=app.id, before={"status": "open"},
                 after={"status": paid.status, "amount_paid": paid.amount_paid}, origin=ctx.origin)
    settle_if_in_dunning(db.session, invoice, ctx, paid_by="owner")
    charges.settle(db.session, charge, ChargeStatus.SUCCEEDED if paid.status == "paid" else ChargeStatus.FAILED,
                   ctx.origin, invoice=paid)
    db.session.commit()
    flash(_("Payment received, thank you. Your new card will be used from now on."), "success")
    return redirect(url_for("notices.index", app_id=app.id))


def _pay(ctx: DunningContext, app, invoice_id: str, attempt: str, card):
    """Charge the open invoice, the charge recorded (key, who asked) and committed before Stripe is called.

    Returns ``(invoice, charge)``, or ``(None, charge)`` when the answer was lost (or another charge of the
    app is still in doubt): the owner is told it is being confirmed, never that nothing was charged.
    A definite refusal is recorded as not charged and raised to the caller.
    """
    try:
        charge, _new = charges.begin(db.session, app_id=app.id, kind=charges.INVOICE_PAYMENT,
                                     key=pay_invoice_key(invoice_id, attempt), target=invoice_id, origin=ctx.origin,
                                     details={"attempt": attempt, "payment_method": card})
    except charges.ChargeInDoubt as doubt:
        db.session.rollback()
        return None, doubt.attempt
    db.session.commit()
    try:
        return ctx.gateway.pay_invoice(invoice_id, attempt=attempt, payment_method_id=card), charge
    except GatewayUnavailable as error:
        db.session.rollback()
        charges.mark_unknown(db.session, charge, error, ctx.origin)
        db.session.commit()
        return None, charge
    except GatewayError as error:
        db.session.rollback()
        charges.settle(db.session, charge, ChargeStatus.FAILED, ctx.origin, error=error.code or error.message)
        db.session.commit()
        raise

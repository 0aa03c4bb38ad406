"""Superadmin pages for refunds under dual control, and for the gateway API's service keys.

An invoice's refund page requests a full or partial refund of its payment with a
reason; the approval queue lets a *different* superadmin approve or refuse it
(billing/refunds.py holds the rules). Service keys are made here (shown once) and
revoked here.
"""
from __future__ import annotations

import logging

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import case, select

from billing import refunds
from billing.errors import GatewayError
from billing.models import App, KernelInvoice, KernelPayment, RefundRequest, RefundStatus, ServiceKey
from billing.money import Money, MoneyError
from billing.service_keys import SCOPES, ServiceKeyError, create_key, revoke_key
from portal.admin.routes import PER_PAGE, bp
from portal.auth.session import superadmin_required
from portal.extensions import db
from portal.pagination import paginate
from portal.payments import gateway
from portal.request_context import request_origin

log = logging.getLogger(__name__)

REFUSALS = {  # billing.refunds codes -> what the page says
    "reason_required": lambda: _("Say why the money goes back."),
    "amount_above_captured": lambda: _("That is more than what can still be refunded."),
    "nothing_to_refund": lambda: _("Nothing is left to refund."),
    "invalid_amount": lambda: _("Enter an amount greater than zero."),
    "currency_mismatch": lambda: _("The amount must be in the payment's currency."),
    "not_refundable": lambda: _("There is no captured payment to refund."),
    "not_pending": lambda: _("This refund is no longer waiting for approval."),
    "same_person": lambda: _("Another superadmin must approve a refund you requested."),
    "not_found": lambda: _("No such refund request."),
}


def _refusal(refused: refunds.RefundRefused) -> str:
    return REFUSALS.get(refused.code, lambda: refused.message)()


def _execute(row_id: int) -> None:
    """Run an approved refund against Stripe and say how it went."""
    try:
        row = refunds.execute(db.session, gateway(), row_id, origin=request_origin(),
                              smtp_configured=bool(current_app.config.get("SMTP_URL")))
        db.session.commit()
    except GatewayError:
        db.session.rollback()
        flash(_("Stripe could not be reached; the refund stays approved and can be retried."), "error")
        return
    if row.status == RefundStatus.SUCCEEDED:
        flash(_("Refund executed; the owner was notified."), "success")
    else:
        flash(_("Stripe refused the refund: %(failure)s", failure=row.failure or ""), "error")


# ---------------------------------------------------------------- an invoice's refunds


def _invoice_or_404(invoice_id: int) -> KernelInvoice:
    invoice = db.get_or_404(KernelInvoice, invoice_id)
    return invoice


def _payments(invoice: KernelInvoice) -> list[KernelPayment]:
    return list(db.session.scalars(select(KernelPayment).where(KernelPayment.invoice_id == invoice.id)
                                   .order_by(KernelPayment.id)))


@bp.get("/invoices/<int:invoice_id>/refunds")
@superadmin_required
def invoice_refunds(invoice_id: int):
    """An invoice's payments, their refunds, and the form that requests a refund."""
    invoice = _invoice_or_404(invoice_id)
    payments = _payments(invoice)
    refundable = {payment.id: refunds.refundable_of_payment(db.session, payment) for payment in payments}
    requests = list(db.session.scalars(select(RefundRequest).where(
        RefundRequest.payment_id.in_([payment.id for payment in payments]))
        .order_by(RefundRequest.id.desc())))
    return render_template("admin/invoice_refunds.html", invoice=invoice, app=invoice.app, payments=payments,
                           refundable=refundable, requests=requests)


@bp.post("/invoices/<int:invoice_id>/refunds")
@superadmin_required
def request_invoice_refund(invoice_id: int):
    """Request a full (amount left empty) or partial refund of the invoice's payment."""
    invoice = _invoice_or_404(invoice_id)
    payment = db.session.get(KernelPayment, request.form.get("payment_id", type=int) or 0)
    if payment is None or payment.invoice_id != invoice.id:
        abort(404)
    back = redirect(url_for("admin.invoice_refunds", invoice_id=invoice.id))
    text = (request.form.get("amount") or "").strip().replace(",", ".")
    try:
        amount = Money.parse(text, payment.currency) if text else None
    except MoneyError:
        flash(_("Enter the amount as a number, such as 49.90."), "error")
        return back
    try:
        row = refunds.request_refund(db.session, payment_id=payment.id, amount=amount,
                                     reason=request.form.get("reason", ""), origin=request_origin(),
                                     approval_above=current_app.config.get("BILLING_REFUND_APPROVAL_ABOVE", 0))
        row_id, waiting = row.id, row.status == RefundStatus.PENDING_APPROVAL
        db.session.commit()
    except refunds.RefundRefused as refused:
        db.session.rollback()
        flash(_refusal(refused), "error")
        return back
    if waiting:
        flash(_("Refund requested; another superadmin must approve it in the refund queue."), "success")
    else:
        _execute(row_id)
    return back


# ---------------------------------------------------------------- the approval queue


@bp.get("/refunds")
@superadmin_required
def refund_queue():
    """Refunds waiting for approval first, then those to retry, then the rest, newest first."""
    waiting_first = case((RefundRequest.status == RefundStatus.PENDING_APPROVAL, 0),
                         (RefundRequest.status == RefundStatus.EXECUTING, 1), else_=2)
    query = select(RefundRequest).order_by(waiting_first, RefundRequest.id.desc())
    pagination = paginate(query, request.args.get("page", type=int), PER_PAGE)
    return render_template("admin/refunds.html", pagination=pagination)


def _decision(refund_id: int, decide) -> None:
    try:
        decide(refund_id)
        db.session.commit()
    except refunds.RefundRefused as refused:
        db.session.rollback()
        flash(_refusal(refused), "error")
        raise


@bp.post("/refunds/<int:refund_id>/approve")
@superadmin_required
def approve_refund(refund_id: int):
    """Approve a refund another superadmin (or a service key) requested, and execute it."""
    try:
        _decision(refund_id, lambda row_id: refunds.approve(db.session, row_id, origin=request_origin()))
    except refunds.RefundRefused:
        return redirect(url_for("admin.refund_queue"))
    _execute(refund_id)
    return redirect(url_for("admin.refund_queue"))


@bp.post("/refunds/<int:refund_id>/refuse")
@superadmin_required
def refuse_refund(refund_id: int):
    """Refuse (or, for its requester, withdraw) a refund waiting for approval."""
    try:
        _decision(refund_id, lambda row_id: refunds.refuse(db.session, row_id, origin=request_origin(),
                                                           note=request.form.get("note", "")))
        flash(_("Refund refused."), "success")
    except refunds.RefundRefused:
        pass
    return redirect(url_for("admin.refund_queue"))


@bp.post("/refunds/<int:refund_id>/retry")
@superadmin_required
def retry_refund(refund_id: int):
    """Ask Stripe again for an approved refund whose outcome was unknown (same idempotency key)."""
    row = db.get_or_404(RefundRequest, refund_id)
    if row.status == RefundStatus.EXECUTING:
        _execute(refund_id)
    return redirect(url_for("admin.refund_queue"))


# ---------------------------------------------------------------- service keys


def _keys_page(new_secret: str | None = None, status: int = 200):
    keys = db.session.scalars(select(ServiceKey).order_by(ServiceKey.revoked_at.is_not(None), ServiceKey.id.desc()))
    apps = db.session.scalars(select(App).order_by(App.name)).all()
    response = render_template("admin/service_keys.html", keys=list(keys), apps=apps, scopes=SCOPES,
                               new_secret=new_secret)
    # The one page that shows a key: never cached, so Back or a shared proxy cannot show it again.
    return response, status, {"Cache-Control": "no-store"}


@bp.get("/service-keys")
@superadmin_required
def service_keys():
    """The gateway API's service keys, live ones first, and the form that makes one."""
    return _keys_page()


@bp.post("/service-keys")
@superadmin_required
def create_service_key():
    """Make a key for one app and show it once."""
    app = db.session.get(App, request.form.get("app_id", type=int) or 0)
    if app is None:
        flash(_("Choose an app."), "error")
        return _keys_page(status=400)
    origin = request_origin()
    try:
        issued = create_key(db.session, app, name=request.form.get("name", ""),
                            scopes=request.form.getlist("scopes"), origin=origin)
    except ServiceKeyError:
        db.session.rollback()
        flash(_("Give the key a name and at least one operation."), "error")
        return _keys_page(status=400)
    db.session.commit()
    return _keys_page(new_secret=issued.secret)


@bp.post("/service-keys/<int:key_id>/revoke")
@superadmin_required
def revoke_service_key(key_id: int):
    """Revoke a key at once (kept for the record)."""
    key = db.get_or_404(ServiceKey, key_id)
    origin = request_origin()
    if revoke_key(db.session, key, origin=origin):
        db.session.commit()
        flash(_("Key revoked."), "success")
    return redirect(url_for("admin.service_keys"))

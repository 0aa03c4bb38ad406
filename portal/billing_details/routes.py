"""The billing details page of an app (its owners edit; a superadmin reads, or edits when acting)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required

from billing.actions import Refused
from billing.billing_details import details_of, save_billing_details
from portal.billing_details.forms import BillingDetailsForm
from portal.extensions import db
from portal.payments import gateway
from portal.request_context import request_origin
from portal.subscriptions.web import refusal_message
from portal.tenancy import get_app_or_404

bp = Blueprint("billing_details", __name__)


@bp.route("/apps/<int:app_id>/billing/details", methods=["GET", "POST"])
@login_required
def edit(app_id: int):
    """Show and save who the app's invoices are made out to; Stripe's customer gets the same."""
    app = get_app_or_404(app_id)
    details = details_of(db.session, app.id)
    form = BillingDetailsForm()
    if form.validate_on_submit():
        try:
            saved = save_billing_details(db.session, gateway(), app, form.values(), origin=request_origin())
        except Refused as refused:  # another billing action of the app still waiting for Stripe
            flash(refusal_message(refused), "warning")
            return render_template("billing_details/edit.html", app=app, form=form, details=details), 409
        if app.stripe_customer_id and saved.synced_at is None:
            flash(_("Your billing details were saved. Stripe could not be reached, so they will appear on "
                    "invoices after you save them again."), "warning")
        else:
            flash(_("Your billing details were saved. They will appear on your next invoices."), "success")
        return redirect(url_for("billing_details.edit", app_id=app.id))
    if not form.is_submitted():
        form.fill_from(app, details)
    status = 400 if form.is_submitted() else 200
    return render_template("billing_details/edit.html", app=app, form=form, details=details), status

"""The JSON API (session or bearer-token auth): 400/401/404/409/502 with a JSON body.

Errors are ``portal.errors.json_error`` bodies; refusals and gateway failures are answered by the
blueprint's error handlers, so views only say what succeeds.
Money is integer minor units next to its currency code, as everywhere.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from flask import Blueprint, jsonify, request
from flask_babel import get_locale
from flask_babel import gettext as _

from billing.errors import GatewayError, GatewayUnavailable
from billing.models import App, AppSubscription, KernelInvoice
from billing.plans import plan_by_code
from billing.subscriptions import (
    Refused,
    live_subscription,
    start_subscription_checkout,
)
from portal.api_auth import api_auth_required, api_user
from portal.errors import json_error
from portal.extensions import db
from portal.pagination import paginate
from portal.invoices.routes import invoices_of
from portal.payments import gateway
from portal.request_context import attempt_from, new_attempt, origin_for
from portal.subscriptions.web import (
    UNAVAILABLE,
    cancel_url,
    refusal_message,
    success_url,
)
from portal.tenancy import get_app_or_404, viewer, visible_apps

bp = Blueprint("api", __name__, url_prefix="/api/v1")

REFUSAL_STATUS = {"plan_unavailable": 400}  # every other refusal is a conflict with the app's state: 409


def app_or_404(app_id: int) -> App:
    """The app, when the API caller may see it; another tenant's app is a 404, as in the pages."""
    return get_app_or_404(app_id, api_user())


@bp.errorhandler(Refused)
def _on_refused(refused: Refused):
    # A refusal writes only facts worth keeping (an alert, a checkout found paid): keep them.
    db.session.commit()
    return json_error(REFUSAL_STATUS.get(refused.code, 409), refusal_message(refused), refused.code)


@bp.errorhandler(GatewayError)
def _on_gateway_error(failure: GatewayError):
    db.session.rollback()
    reason = "gateway_unavailable" if isinstance(failure, GatewayUnavailable) else "gateway_error"
    return json_error(502, str(UNAVAILABLE), reason)


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value else None


def subscription_json(row: Optional[AppSubscription]) -> Optional[dict[str, Any]]:
    if row is None:
        return None
    return {
        "id": row.stripe_subscription_id,
        "plan": row.plan.code,
        "status": row.status.value,
        "amount": row.plan.amount,
        "currency": row.plan.currency,
        "interval": row.plan.interval,
        "current_period_start": _iso(row.current_period_start),
        "current_period_end": _iso(row.current_period_end),
        "trial_end": _iso(row.trial_end),
        "cancel_at_period_end": row.cancel_at_period_end,
        "canceled_at": _iso(row.canceled_at),
        "scheduled_change": ({"plan": row.scheduled_plan.code, "at": _iso(row.scheduled_change_at)}
                             if row.scheduled_plan else None),
        "card": {"brand": row.card_brand, "last4": row.card_last4} if row.card_last4 else None,
    }


def invoice_json(invoice: KernelInvoice) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "stripe_id": invoice.stripe_invoice_id,
        "number": invoice.number,
        "status": invoice.status,
        "billing_reason": invoice.billing_reason,
        "amount_due": invoice.amount_due,
        "amount_paid": invoice.amount_paid,
        "amount_remaining": invoice.amount_remaining,
        "currency": invoice.currency,
        "period_start": _iso(invoice.period_start),
        "period_end": _iso(invoice.period_end),
        "created_at": _iso(invoice.created_at),
        "paid_at": _iso(invoice.paid_at),
        "hosted_invoice_url": invoice.hosted_invoice_url,
        "invoice_pdf": invoice.invoice_pdf,
    }


def app_json(app: App) -> dict[str, Any]:
    return {"id": app.id, "name": app.name, "slug": app.slug, "status": app.status.value,
            "subscription": subscription_json(live_subscription(db.session, app))}


@bp.get("/apps")
@api_auth_required
def apps():
    """The apps the caller may see, each with its live subscription."""
    caller = api_user()
    return jsonify(data=[app_json(app) for app in db.session.scalars(visible_apps(caller), viewer(caller))])


@bp.get("/apps/<int:app_id>/subscription")
@api_auth_required
def subscription(app_id: int):
    """The app's live subscription (null on the Free plan)."""
    return jsonify(app_json(app_or_404(app_id)))


@bp.get("/apps/<int:app_id>/invoices")
@api_auth_required
def invoices(app_id: int):
    """The app's invoices, newest first, 20 a page (``?page=``)."""
    app = app_or_404(app_id)
    page = paginate(invoices_of(app), request.args.get("page", type=int))
    return jsonify(data=[invoice_json(invoice) for invoice in page.items], page=page.page, pages=page.pages,
                   total=page.total, has_more=page.has_next)


@bp.post("/apps/<int:app_id>/billing/checkout")
@api_auth_required
def checkout(app_id: int):
    """Open a Stripe Checkout Session for ``{"plan": "pro"}``; answers 201 with the URL to send the payer to.

    Send the same ``Idempotency-Key`` header (or ``attempt`` field) to retry safely:
    the same session comes back instead of a second one.
    """
    app = app_or_404(app_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return json_error(400, _("Send a JSON object such as {\"plan\": \"pro\"}."), "invalid_body")
    code = body.get("plan")
    plan = plan_by_code(db.session, code) if isinstance(code, str) else None
    if plan is None:
        return json_error(400, _("Unknown plan."), "unknown_plan")
    given = request.headers.get("Idempotency-Key") or body.get("attempt")
    attempt = attempt_from(given) if given else new_attempt()
    local = start_subscription_checkout(db.session, gateway(), app, plan, origin=origin_for(api_user()),
                                        success_url=success_url(), cancel_url=cancel_url(app), attempt=attempt,
                                        locale=str(get_locale()))
    payload = {"id": local.stripe_session_id, "url": local.url, "mode": local.mode, "plan": plan.code,
               "status": local.status.value}
    db.session.commit()
    return jsonify(checkout_session=payload), 201


"""Alerts as a superadmin reads them, in their language: a title per kind and a message from the alert's data.

Billing raises an alert with its ``kind`` and ``details`` (and an English ``message`` for the logs and the
e-mail to superadmins); the admin pages say it from here. An alert whose details lack what its sentence
needs (raised before the sentence existed) shows its stored message; an unknown kind is an error the
i18n test catches (``tests/test_i18n.py`` checks every kind billing raises has a title here).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from flask import Flask
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from billing.models import Alert
from portal.i18n import date, money

TITLES = {
    "payment_failed": _l("Renewal payment failed"),
    "dunning_exhausted": _l("Dunning ended: subscription canceled"),
    "invoice_payment_failed": _l("Invoice payment failed"),
    "payment_intent_failed": _l("Payment failed"),
    "proration_mismatch": _l("Proration differs from Stripe's"),
    "reconciliation_divergence": _l("Stripe and our records differ"),
    "webhook_failed": _l("Stripe event not processed"),
    "payment_failure_rate": _l("Many payments are failing"),
    "mrr_drop": _l("MRR dropped"),
    "webhook_lag": _l("Stripe events are applied late"),
    "retry_queue": _l("Stripe events wait for a retry"),
    "BillingGatewayIdempotency": _l("Invoice charged more than once"),
}


def _code(details: dict[str, Any]) -> str:
    return details.get("failure_code") or _("declined")


MESSAGES: dict[str, Callable[[dict[str, Any]], str]] = {
    "payment_failed": lambda d: (
        _("Retry %(attempt)s of invoice %(invoice)s (%(amount)s) failed: %(code)s.", attempt=d["attempt"],
          invoice=d["invoice"], amount=money(d["amount_due"], d["currency"]), code=_code(d))
        if d.get("attempt") else
        _("The renewal of invoice %(invoice)s (%(amount)s) failed: %(code)s. Dunning started.",
          invoice=d["invoice"], amount=money(d["amount_due"], d["currency"]), code=_code(d))),
    "dunning_exhausted": lambda d: _(
        "Every retry of invoice %(invoice)s (%(amount)s) failed: the subscription was canceled and the app paused.",
        invoice=d["invoice"], amount=money(d["amount_due"], d["currency"])),
    "invoice_payment_failed": lambda d: _("The payment of invoice %(invoice)s (%(amount)s) failed: %(code)s.",
                                          invoice=d["invoice"], amount=money(d["amount_due"], d["currency"]),
                                          code=_code(d)),
    "payment_intent_failed": lambda d: _("A payment of %(amount)s failed: %(code)s (%(id)s).",
                                         amount=money(d["amount"], d["currency"].upper()), code=_code(d),
                                         id=d["payment_intent"]),
    "proration_mismatch": lambda d: _(
        "Upgrade %(old)s → %(new)s refused: our proration is %(ours)s, Stripe's preview %(theirs)s.",
        old=d["from"], new=d["to"], ours=money(d["expected"], d["currency"]),
        theirs=money(d["gateway"], d["currency"])),
    "reconciliation_divergence": lambda d: _("%(object)s %(id)s differs from Stripe (%(kind)s).",
                                             object=d["object_type"], id=d["stripe_id"], kind=d["kind"]),
    "webhook_failed": lambda d: _("Stripe event %(event)s (%(type)s) could not be processed; replay it from "
                                  "Stripe events once the cause is fixed.", event=d["event"], type=d["type"]),
    "payment_failure_rate": lambda d: _("%(failed)s of %(attempts)s payment attempts failed in the last hour.",
                                        failed=d["failed"], attempts=d["attempts"]),
    "mrr_drop": lambda d: _("MRR fell from %(then)s to %(now)s since %(date)s.",
                            then=money(d["mrr_then"], d["scope"]), now=money(d["mrr_now"], d["scope"]),
                            date=date(datetime.fromisoformat(d["snapshot_at"]))),
    "webhook_lag": lambda d: _("%(waiting)s Stripe events wait; the oldest for %(seconds)s s.",
                               waiting=d["waiting"], seconds=d["oldest_seconds"]),
    "retry_queue": lambda d: _("%(queued)s Stripe events failed and wait for a retry or a replay.",
                               queued=d["queued"]),
    "BillingGatewayIdempotency": lambda d: _("Invoices charged successfully more than once: %(invoices)s.",
                                             invoices=", ".join(d["invoices"][:10])),
}


def alert_title(kind: str) -> str:
    return str(TITLES.get(kind, kind))


def alert_message(alert: Alert) -> str:
    """The alert's sentence in the reader's language; its stored message when its details cannot say it."""
    render = MESSAGES.get(alert.kind)
    if render is None or not alert.details:
        return alert.message
    try:
        return render(alert.details)
    except (KeyError, TypeError, ValueError, AttributeError):
        return alert.message


def init_app(app: Flask) -> None:
    app.jinja_env.filters["alert_title"] = alert_title
    app.jinja_env.globals["alert_message"] = alert_message

"""An app's invoices: list, detail, links to Stripe's hosted page and PDF."""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Optional

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import Select, bindparam, select

from billing.errors import GatewayError
from billing.gateway.types import BilledTo, InvoiceLine
from billing.models import App, KernelInvoice
from billing.plans import plan_by_price
from portal.extensions import db
from portal.i18n import date, money
from portal.pagination import paginate
from portal.payments import gateway
from portal.tenancy import get_app_or_404
from portal.wording import plan_name

log = logging.getLogger(__name__)

bp = Blueprint("invoices", __name__)


def invoices_of(app: App) -> Select:
    """An app's invoices, newest first (Stripe's creation date, then our id for equal seconds)."""
    return (select(KernelInvoice).where(KernelInvoice.app_id == app.id)
            .order_by(KernelInvoice.created_at.desc(), KernelInvoice.id.desc()))


# Built once: the invoice page reads through it on every answer.
_OF_APP = select(KernelInvoice).where(KernelInvoice.id == bindparam("invoice_id"),
                                     KernelInvoice.app_id == bindparam("app_id"))


def invoice_or_404(app: App, invoice_id: int) -> KernelInvoice:
    """The invoice, only when it belongs to ``app``: another tenant's invoice id is a 404."""
    invoice = db.session.scalar(_OF_APP, {"invoice_id": invoice_id, "app_id": app.id})
    if invoice is None:
        abort(404)
    return invoice


@bp.app_template_global()
def recent_invoices(app: App, limit: int = 5) -> list[KernelInvoice]:
    """The app's latest invoices, for the overview page."""
    return list(db.session.scalars(invoices_of(app).limit(limit)))


@bp.app_template_global()
def line_description(line: InvoiceLine) -> str:
    """An invoice line in the reader's language: our words for our plans' lines, Stripe's for anything else.

    Stripe writes line descriptions itself ("Unused time on Kernel Pro after 4 Dec 2026"); the customer's
    ``preferred_locales`` govern Stripe's invoice documents and e-mails, but whether every line description
    follows them is not something we rely on, so our pages say it themselves.
    """
    plan = plan_by_price(db.session, line.price_id) if line.price_id else None
    if plan is None:
        return line.description
    name = plan_name(plan)
    if line.proration and line.period_start:
        when = date(line.period_start)
        if line.amount < 0:
            return _("Unused time on %(plan)s after %(date)s", plan=name, date=when)
        return _("Remaining time on %(plan)s after %(date)s", plan=name, date=when)
    return _("%(plan)s plan, %(price)s a month", plan=name, price=money(plan.amount, plan.currency))


# How many finalized invoices' lines each process keeps (a few hundred bytes each).
FINALIZED_KEPT = 2048


class _Finalized:
    """What Stripe printed on finalized invoices, newest used last: a finalized invoice never changes (its lines,
    and the customer's details it copied), so its page asks Stripe once per process rather than on every view.
    A draft's lines still change: it is asked each time."""

    def __init__(self, size: int):
        self.size = size
        self._kept: OrderedDict[str, tuple[tuple[InvoiceLine, ...], Optional[BilledTo]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, invoice_id: str):
        with self._lock:
            if invoice_id in self._kept:
                self._kept.move_to_end(invoice_id)
                return self._kept[invoice_id]
        return None

    def keep(self, invoice_id: str, printed) -> None:
        with self._lock:
            self._kept[invoice_id] = printed
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)


def printed_on(stripe_invoice_id: str) -> tuple[tuple[InvoiceLine, ...], Optional[BilledTo]]:
    """An invoice's lines and who it is billed to, as Stripe has them (``GatewayError`` when Stripe is away)."""
    kept: _Finalized = current_app.extensions[FINALIZED]
    printed = kept.get(stripe_invoice_id)
    if printed is None:
        db.session.commit()  # the page's reads end before Stripe is asked (portal/payments.py checks it)
        remote = gateway().retrieve_invoice(stripe_invoice_id)
        printed = (remote.lines, remote.billed_to)
        if remote.status not in (None, "draft"):
            kept.keep(stripe_invoice_id, printed)
    return printed


FINALIZED = "kbp_finalized_invoices"


def finalized_invoices() -> _Finalized:
    return _Finalized(FINALIZED_KEPT)


@bp.get("/apps/<int:app_id>/invoices")
@login_required
def index(app_id: int):
    """The app's invoices, newest first, 20 a page."""
    app = get_app_or_404(app_id)
    pagination = paginate(invoices_of(app), request.args.get("page", type=int))
    return render_template("invoices/index.html", app=app, pagination=pagination)


@bp.get("/apps/<int:app_id>/invoices/<int:invoice_id>")
@login_required
def detail(app_id: int, invoice_id: int):
    """One invoice with its lines (asked of Stripe; the page still shows the rest when Stripe is down)."""
    app = get_app_or_404(app_id)
    invoice = invoice_or_404(app, invoice_id)
    lines, lines_unavailable, billed_to = (), False, None
    try:
        # Who it is made out to as Stripe printed it (copied from the customer until it was finalized).
        lines, billed_to = printed_on(invoice.stripe_invoice_id)
    except GatewayError as error:
        log.warning("invoice %s lines unavailable: %s", invoice.stripe_invoice_id, error.message)
        lines_unavailable = True
    return render_template("invoices/detail.html", app=app, invoice=invoice, lines=lines,
                           lines_unavailable=lines_unavailable, billed_to=billed_to)

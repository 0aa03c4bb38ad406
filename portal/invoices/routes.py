"""An app's invoices: list, detail, links to Stripe's hosted page and PDF."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Generic, Optional, Sequence, TypeVar

from flask import Blueprint, abort, render_template, request
from flask_login import login_required
from sqlalchemy import Select, func, select

from billing.errors import GatewayError
from billing.models import App, KernelInvoice
from portal.extensions import db
from portal.payments import gateway
from portal.tenancy import get_app_or_404

log = logging.getLogger(__name__)

bp = Blueprint("invoices", __name__)

PER_PAGE = 20
T = TypeVar("T")


@dataclass(frozen=True)
class Pagination(Generic[T]):
    items: Sequence[T]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def paginate(query: Select, page: Optional[int], per_page: int = PER_PAGE) -> Pagination:
    """One page of ``query``; a page number out of range shows the nearest page."""
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(page or 1, 1), pages)
    items = db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)).all()
    return Pagination(items, page, per_page, total)


def invoices_of(app: App) -> Select:
    """An app's invoices, newest first (Stripe's creation date, then our id for equal seconds)."""
    return (select(KernelInvoice).where(KernelInvoice.app_id == app.id)
            .order_by(KernelInvoice.created_at.desc(), KernelInvoice.id.desc()))


def invoice_or_404(app: App, invoice_id: int) -> KernelInvoice:
    """The invoice, only when it belongs to ``app``: another tenant's invoice id is a 404."""
    invoice = db.session.scalar(select(KernelInvoice).where(KernelInvoice.id == invoice_id,
                                                            KernelInvoice.app_id == app.id))
    if invoice is None:
        abort(404)
    return invoice


@bp.app_template_global()
def recent_invoices(app: App, limit: int = 5) -> list[KernelInvoice]:
    """The app's latest invoices, for the overview page."""
    return list(db.session.scalars(invoices_of(app).limit(limit)))


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
    lines, lines_unavailable = (), False
    try:
        lines = gateway().retrieve_invoice(invoice.stripe_invoice_id).lines
    except GatewayError as error:
        log.warning("invoice %s lines unavailable: %s", invoice.stripe_invoice_id, error.message)
        lines_unavailable = True
    return render_template("invoices/detail.html", app=app, invoice=invoice, lines=lines,
                           lines_unavailable=lines_unavailable)

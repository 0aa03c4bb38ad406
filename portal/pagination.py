"""Page-by-page lists (invoices, the API, the superadmin pages): Flask-SQLAlchemy's ``db.paginate``.

Two things are added to it. A page number past the end shows the last page rather than an
empty one (a link kept from when the list was longer still lands on rows), and a list of
whole rows (several entities and labels per row, the superadmin's tenants) can be paged too.
"""
from __future__ import annotations

from typing import Any, Optional

from flask_sqlalchemy.pagination import Pagination, SelectPagination
from sqlalchemy import Select

from portal.extensions import db

PER_PAGE = 20


class _RowPagination(SelectPagination):
    """Items are whole result rows: ``db.paginate`` keeps only each row's first column."""

    def _query_items(self) -> list[Any]:
        select = self._query_args["select"].limit(self.per_page).offset(self._query_offset)
        return list(self._query_args["session"].execute(select).all())


def paginate(query: Select, page: Optional[int], per_page: int = PER_PAGE, *, rows: bool = False) -> Pagination:
    """One page of ``query`` (page 1 when none or below 1; the last page when past the end).

    Items are the first column's objects, or whole rows with ``rows=True``.
    """
    def one(number: int) -> Pagination:
        if rows:
            return _RowPagination(select=query, session=db.session(), page=number, per_page=per_page,
                                  max_per_page=None, error_out=False, count=True)
        return db.paginate(query, page=number, per_page=per_page, max_per_page=None, error_out=False, count=True)

    pagination = one(max(page or 1, 1))
    if pagination.total and pagination.page > pagination.pages:
        pagination = one(pagination.pages)
    return pagination

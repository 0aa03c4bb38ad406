"""Page-by-page lists (invoices, the API, the superadmin pages): Flask-SQLAlchemy's ``db.paginate``.

Three things are added to it. A page number past the end shows the last page rather than an
empty one (a link kept from when the list was longer still lands on rows). A list of whole
rows (several entities and labels per row, the superadmin's tenants) can be paged too. And
the count, a second read, is skipped when the page itself tells it: most apps' invoices fit
on one page, which is then its own total.
"""
from __future__ import annotations

from typing import Any, Optional

from flask_sqlalchemy.pagination import Pagination, SelectPagination
from sqlalchemy import Select

from portal.extensions import db

PER_PAGE = 20


class _Pagination(SelectPagination):
    """Counts only when it must: a page that is not full is the last one, so its rows give the total."""

    def _query_count(self) -> int:
        # self.items is set before the count is asked for (Pagination.__init__). A page past the end is empty
        # and needs the count to find the last page; so does a full page, which may have more after it.
        if 0 < len(self.items) < self.per_page or (self.page == 1 and not self.items):
            return self._query_offset + len(self.items)
        return super()._query_count()


class _RowPagination(_Pagination):
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
        return _Pagination(select=query, session=db.session(), page=number, per_page=per_page, max_per_page=None,
                           error_out=False, count=True)

    pagination = one(max(page or 1, 1))
    if pagination.total and pagination.page > pagination.pages:
        pagination = one(pagination.pages)
    return pagination

"""Page-by-page lists (invoices here; the API and the superadmin pages use it too)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Optional, Sequence, TypeVar

from sqlalchemy import Select, func, select

from portal.extensions import db

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


def paginate(query: Select, page: Optional[int], per_page: int = PER_PAGE, *, rows: bool = False) -> Pagination:
    """One page of ``query``; a page number out of range shows the nearest page.

    Items are the first column's objects, or whole rows with ``rows=True``.
    """
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(page or 1, 1), pages)
    limited = query.limit(per_page).offset((page - 1) * per_page)
    items = db.session.execute(limited).all() if rows else db.session.scalars(limited).all()
    return Pagination(items, page, per_page, total)

"""URL converters: an id in a path is only an id if our tables could hold it."""
from __future__ import annotations

from werkzeug.routing import IntegerConverter

# Primary keys are INTEGER columns: 32-bit signed on PostgreSQL.
MAX_ID = 2**31 - 1


def digits_up_to(limit: int) -> str:
    """A regular expression matching the decimal numbers from 0 to ``limit`` (leading zeros within its length)."""
    text = str(limit)
    parts = [f"[0-9]{{1,{len(text) - 1}}}"] if len(text) > 1 else []
    for i, digit in enumerate(text):
        if digit != "0":
            rest = len(text) - i - 1
            parts.append(text[:i] + f"[0-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    parts.append(text)
    return "(?:" + "|".join(parts) + ")"


class IdConverter(IntegerConverter):
    """``<int:...>`` for ids: a number larger than any primary key does not match the route at all, so
    it is a 404 on every route (never a query that overflows the driver: SQLite raises past 64 bits,
    PostgreSQL past 32). Bounded in the pattern, not in ``to_python``: a value refused there makes
    Werkzeug answer 405 when the same path has a rule for another method."""

    regex = digits_up_to(MAX_ID)


def is_id(value: object) -> bool:
    """True for an int our primary keys can hold (query-string ids go through here)."""
    return isinstance(value, int) and 0 < value <= MAX_ID


def init_app(app) -> None:
    # Must run before any blueprint registers its rules: each rule looks its converter up when added.
    app.url_map.converters["int"] = IdConverter

"""Builders of Stripe-shaped objects (API version 2026-10-28.endive).

Each builder returns every top-level field Stripe's own example of that object
has, with null/[]/{}/false where the sandbox has nothing to say, so a client
reading any documented field finds it. Builders hold no logic beyond shape.
"""

from __future__ import annotations

from typing import Any


def empty_list(url: str, data: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"object": "list", "data": list(data or []), "has_more": False, "url": url}


def empty_address() -> dict[str, Any]:
    return {"city": None, "country": None, "line1": None, "line2": None,
            "postal_code": None, "state": None}

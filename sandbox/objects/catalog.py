from __future__ import annotations

from typing import Any

from ..ids import new_id


def product(now: int, *, product_id: str | None, name: str, description: str | None, active: bool,
            metadata: dict[str, str], default_price: str | None = None) -> dict[str, Any]:
    return {
        "id": product_id or new_id("prod"),
        "object": "product",
        "active": active,
        "created": now,
        "default_price": default_price,
        "description": description,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": metadata,
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": now,
        "url": None,
    }


def price(now: int, *, product_id: str, unit_amount: int, currency: str,
          recurring: dict[str, Any] | None, lookup_key: str | None, nickname: str | None,
          active: bool, metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "id": new_id("price"),
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": now,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": metadata,
        "nickname": nickname,
        "product": product_id,
        "recurring": None if recurring is None else {
            "interval": recurring["interval"],
            "interval_count": recurring["interval_count"],
            "meter": None,
            "usage_type": "licensed",
            "trial_period_days": recurring.get("trial_period_days"),
        },
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def plan_from_price(price_obj: dict[str, Any]) -> dict[str, Any]:
    """The legacy ``plan`` view Stripe still embeds in subscription items."""
    recurring = price_obj.get("recurring") or {}
    return {
        "id": price_obj["id"],
        "object": "plan",
        "active": price_obj["active"],
        "amount": price_obj["unit_amount"],
        "amount_decimal": price_obj["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price_obj["created"],
        "currency": price_obj["currency"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "livemode": False,
        "metadata": price_obj["metadata"],
        "meter": None,
        "nickname": price_obj["nickname"],
        "product": price_obj["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }

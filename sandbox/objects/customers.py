from __future__ import annotations

import secrets
from typing import Any

from ..ids import new_id


def customer(now: int, *, email: str | None, name: str | None, description: str | None,
             phone: str | None, metadata: dict[str, str],
             default_payment_method: str | None) -> dict[str, Any]:
    prefix = secrets.token_hex(4).upper()
    return {
        "id": new_id("cus"),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": now,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": description,
        "discount": None,
        "email": email,
        "invoice_prefix": prefix,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": default_payment_method,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": metadata,
        "name": name,
        "next_invoice_sequence": 1,
        "phone": phone,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
        "customer_account": None,
    }


def deleted_customer(customer_id: str) -> dict[str, Any]:
    return {"id": customer_id, "object": "customer", "deleted": True}


def tax_id(now: int, *, customer: str, kind: str, value: str) -> dict[str, Any]:
    return {
        "id": new_id("txi"),
        "object": "tax_id",
        "country": "BR",
        "created": now,
        "customer": customer,
        "livemode": False,
        "owner": {"customer": customer, "type": "customer"},
        "type": kind,
        "value": value,
        "verification": None,
    }

"""Invoice, invoice line item, invoice payment and pending invoice item shapes."""

from __future__ import annotations

from typing import Any

from ..ids import new_id
from . import empty_list


def line_item(*, invoice_id: str | None, amount: int, currency: str, description: str,
              period_start: int, period_end: int, price: dict[str, Any], quantity: int,
              subscription_id: str | None, subscription_item_id: str | None, proration: bool,
              invoice_item_id: str | None = None, metadata: dict[str, str] | None = None,
              line_id: str | None = None) -> dict[str, Any]:
    return {
        "id": line_id or new_id("il"),
        "object": "line_item",
        "amount": amount,
        "currency": currency,
        "description": description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": metadata or {},
        "parent": {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": invoice_item_id,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription_id,
                "subscription_item": subscription_item_id,
            },
            "type": "subscription_item_details",
        },
        "period": {"end": period_end, "start": period_start},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": str(price["unit_amount"]),
        },
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "subscription": subscription_id,
        "subtotal": amount,
        "taxes": [],
    }


def manual_line(ii: dict[str, Any], invoice_id: str | None) -> dict[str, Any]:
    """The invoice line of a one-off invoice item (created with POST /v1/invoiceitems)."""
    subscription_id = (ii["parent"] or {}).get("subscription_details", {}).get("subscription") \
        if ii.get("parent") else None
    return {
        "id": new_id("il"),
        "object": "line_item",
        "amount": ii["amount"],
        "currency": ii["currency"],
        "description": ii["description"],
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": ii["metadata"],
        "parent": {
            "invoice_item_details": {"invoice_item": ii["id"], "proration": False, "proration_details":
                                     {"credited_items": None}, "subscription": subscription_id},
            "subscription_item_details": None,
            "type": "invoice_item_details",
        },
        "period": dict(ii["period"]),
        "pretax_credit_amounts": [],
        "pricing": ii["pricing"],
        "quantity": ii["quantity"],
        "quantity_decimal": ii["quantity_decimal"],
        "subscription": subscription_id,
        "subtotal": ii["amount"],
        "taxes": [],
    }


def one_off_item(now: int, *, customer: str, amount: int, currency: str, description: str | None,
                 quantity: int, price: dict[str, Any] | None, subscription_id: str | None,
                 period_start: int, period_end: int, metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "id": new_id("ii"),
        "object": "invoiceitem",
        "amount": amount,
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "date": now,
        "description": description,
        "discountable": True,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": metadata,
        "net_amount": amount,
        "parent": None if not subscription_id else {
            "subscription_details": {"subscription": subscription_id, "subscription_item": None},
            "type": "subscription_details",
        },
        "period": {"end": period_end, "start": period_start},
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]} if price else None,
            "type": "price_details",
            "unit_amount_decimal": str(price["unit_amount"] if price else amount // max(quantity, 1)),
        },
        "proration": False,
        "proration_details": {"discount_amounts": []},
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "tax_rates": [],
        "test_clock": None,
    }


def invoice_item(now: int, *, customer: str, line: dict[str, Any]) -> dict[str, Any]:
    """A pending proration waiting for the subscription's next invoice."""
    details = line["parent"]["subscription_item_details"]
    return {
        "id": new_id("ii"),
        "object": "invoiceitem",
        "amount": line["amount"],
        "currency": line["currency"],
        "customer": customer,
        "customer_account": None,
        "date": now,
        "description": line["description"],
        "discountable": False,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "net_amount": line["amount"],
        "parent": {
            "subscription_details": {"subscription": details["subscription"],
                                     "subscription_item": details["subscription_item"]},
            "type": "subscription_details",
        },
        "period": dict(line["period"]),
        "pricing": line["pricing"],
        "proration": details["proration"],
        "proration_details": {"discount_amounts": []},
        "quantity": line["quantity"],
        "quantity_decimal": line["quantity_decimal"],
        "tax_rates": [],
        "test_clock": None,
    }


def invoice(now: int, *, invoice_id: str | None, customer: dict[str, Any], currency: str,
            subscription_id: str | None, subscription_metadata: dict[str, str] | None,
            billing_reason: str, period_start: int, period_end: int,
            default_payment_method: str | None, base_url: str) -> dict[str, Any]:
    hosted = pdf = None
    if invoice_id and not invoice_id.startswith("upcoming_"):
        hosted = f"{base_url.rstrip('/')}/invoice/{invoice_id}"
        pdf = f"{hosted}/pdf"
    parent = None
    if subscription_id:
        parent = {
            "quote_details": None,
            "subscription_details": {"metadata": subscription_metadata or {},
                                     "subscription": subscription_id},
            "type": "subscription_details",
        }
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "BR",
        "account_name": "Kernel Billing Sandbox",
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_paid_off_stripe": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": True,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None,
                          "provider": None, "status": None},
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "confirmation_secret": None,
        "created": now,
        "currency": currency,
        "custom_fields": None,
        "customer": customer["id"],
        "customer_account": None,
        "customer_address": None,
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "customer_phone": customer.get("phone"),
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": default_payment_method,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": hosted,
        "invoice_pdf": pdf,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": empty_list(f"/v1/invoices/{invoice_id}/lines" if invoice_id else "/v1/invoices/upcoming/lines"),
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": parent,
        "payment_settings": {"default_mandate": None, "payment_method_options": None,
                             "payment_method_types": None},
        "payments": empty_list(f"/v1/invoice_payments?invoice={invoice_id}"),
        "period_end": period_end,
        "period_start": period_start,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None,
                               "paid_at": None, "voided_at": None},
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": None,
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": now,
    }


def invoice_payment(now: int, *, invoice_obj: dict[str, Any], payment_intent_id: str,
                    amount: int) -> dict[str, Any]:
    return {
        "id": new_id("inpay"),
        "object": "invoice_payment",
        "amount_paid": None,
        "amount_requested": amount,
        "created": now,
        "currency": invoice_obj["currency"],
        "invoice": invoice_obj["id"],
        "is_default": True,
        "livemode": False,
        "payment": {"payment_intent": payment_intent_id, "type": "payment_intent"},
        "status": "open",
        "status_transitions": {"canceled_at": None, "paid_at": None},
    }

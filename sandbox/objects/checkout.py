"""Checkout Session and its line item (``item``) shapes."""

from __future__ import annotations

from typing import Any

from ..ids import new_id, random_token


def session_line_item(price: dict[str, Any], quantity: int, product_name: str) -> dict[str, Any]:
    amount = price["unit_amount"] * quantity
    return {
        "id": new_id("li"),
        "object": "item",
        "adjustable_quantity": None,
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": price["currency"],
        "description": product_name,
        "discounts": [],
        "price": price,
        "quantity": quantity,
        "taxes": [],
    }


def checkout_session(now: int, *, mode: str, base_url: str, customer: str | None,
                     customer_email: str | None, success_url: str | None, cancel_url: str | None,
                     client_reference_id: str | None, metadata: dict[str, str], currency: str | None,
                     amount_total: int | None, expires_at: int) -> dict[str, Any]:
    session_id = new_id("cs_test", random_chars=40)
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": None,
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {"after_submit": None, "shipping_address": None, "submit": None,
                        "terms_of_service_acceptance": None},
        "customer": customer,
        "customer_account": None,
        "customer_creation": None if customer else ("always" if mode != "payment" else "if_required"),
        "customer_details": None,
        "customer_email": customer_email,
        "discounts": [],
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": None,
        "livemode": False,
        "locale": None,
        "managed_payments": None,
        "metadata": metadata,
        "mode": mode,
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "always",
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": "no_payment_required" if mode == "setup" else "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": success_url,
        "total_details": None if mode == "setup" else {"amount_discount": 0, "amount_shipping": 0,
                                                       "amount_tax": 0},
        "ui_mode": "hosted_page",
        "url": f"{base_url.rstrip('/')}/checkout/{session_id}",
        "wallet_options": None,
    }


def customer_details(email: str | None, name: str | None) -> dict[str, Any]:
    from . import empty_address

    return {"address": empty_address(), "business_name": None, "email": email,
            "individual_name": None, "name": name, "phone": None, "tax_exempt": "none",
            "tax_ids": []}


def client_secret() -> str:
    return random_token(32)

"""PaymentMethod, SetupIntent, PaymentIntent, Charge and Refund shapes."""

from __future__ import annotations

from typing import Any

from ..cards import CardDetails
from ..ids import new_id, random_token
from . import empty_address, empty_list


def billing_details(name: str | None = None, email: str | None = None) -> dict[str, Any]:
    return {"address": empty_address(), "email": email, "name": name, "phone": None, "tax_id": None}


def payment_method(now: int, card: CardDetails, *, customer: str | None,
                   name: str | None, email: str | None, metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "id": new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing_details(name, email),
        "card": {
            "brand": card.brand,
            "checks": {"address_line1_check": None, "address_postal_code_check": None,
                       "cvc_check": "pass"},
            "country": card.country,
            "display_brand": card.brand,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "fingerprint": card.fingerprint,
            "funding": card.funding,
            "generated_from": None,
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": now,
        "customer": customer,
        "customer_account": None,
        "livemode": False,
        "metadata": metadata,
        "type": "card",
    }


def setup_intent(now: int, *, customer: str | None, payment_method: str | None, usage: str,
                 description: str | None, metadata: dict[str, str], status: str) -> dict[str, Any]:
    intent_id = new_id("seti")
    return {
        "id": intent_id,
        "object": "setup_intent",
        "application": None,
        "automatic_payment_methods": None,
        "cancellation_reason": None,
        "client_secret": f"{intent_id}_secret_{random_token(24)}",
        "created": now,
        "customer": customer,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "mandate": None,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": payment_method,
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"mandate_options": None, "network": None,
                                            "request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "single_use_mandate": None,
        "status": status,
        "usage": usage,
    }


def payment_intent(now: int, *, amount: int, currency: str, customer: str | None,
                   payment_method: str | None, capture_method: str, description: str | None,
                   metadata: dict[str, str], setup_future_usage: str | None,
                   receipt_email: str | None = None) -> dict[str, Any]:
    intent_id = new_id("pi")
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture_method,
        "client_secret": f"{intent_id}_secret_{random_token(24)}",
        "confirmation_method": "automatic",
        "created": now,
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": payment_method,
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"installments": None, "mandate_options": None,
                                            "network": None, "request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": setup_future_usage,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method" if payment_method is None else "requires_confirmation",
        "transfer_data": None,
        "transfer_group": None,
    }


def charge(now: int, *, pi: dict[str, Any], pm: dict[str, Any], captured: bool,
           failure: tuple[str, str, str] | None) -> dict[str, Any]:
    """``failure`` is ``(failure_code, decline_code, message)`` for a declined charge."""
    charge_id = new_id("ch")
    card = pm["card"]
    succeeded = failure is None
    amount = pi["amount"]
    outcome = {
        "advice_code": None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "approved_by_network" if succeeded else "declined_by_network",
        "reason": None if succeeded else failure[1],
        "risk_level": "normal",
        "risk_score": 20,
        "seller_message": "Payment complete." if succeeded else
        "The bank did not return any further details with this decline.",
        "type": "authorized" if succeeded else "issuer_declined",
    }
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if (succeeded and captured) else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": pm["billing_details"],
        "calculated_statement_descriptor": "KERNEL BILLING",
        "captured": succeeded and captured,
        "created": now,
        "currency": pi["currency"],
        "customer": pi["customer"],
        "description": pi["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None if succeeded else failure[0],
        "failure_message": None if succeeded else failure[2],
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(pi["metadata"]),
        "on_behalf_of": None,
        "outcome": outcome,
        "paid": succeeded,
        "payment_intent": pi["id"],
        "payment_method": pm["id"],
        "payment_method_details": {
            "card": {
                "amount_authorized": amount if succeeded else None,
                "authorization_code": None,
                "brand": card["brand"],
                "checks": card["checks"],
                "country": card["country"],
                "exp_month": card["exp_month"],
                "exp_year": card["exp_year"],
                "extended_authorization": {"status": "disabled"},
                "fingerprint": card["fingerprint"],
                "funding": card["funding"],
                "incremental_authorization": {"status": "unavailable"},
                "installments": None,
                "last4": card["last4"],
                "mandate": None,
                "multicapture": {"status": "unavailable"},
                "network": card["brand"],
                "network_token": {"used": False},
                "network_transaction_id": None,
                "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
                "regulated_status": "unregulated",
                "three_d_secure": None,
                "transaction_link_id": None,
                "wallet": None,
            },
            "type": "card",
        },
        "receipt_email": pi.get("receipt_email"),
        "receipt_number": None,
        "receipt_url": None,
        "refunded": False,
        "refunds": empty_list(f"/v1/charges/{charge_id}/refunds"),
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded" if succeeded else "failed",
        "transfer_data": None,
        "transfer_group": None,
    }


def refund(now: int, *, charge_obj: dict[str, Any], amount: int, reason: str | None,
           metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge_obj["id"],
        "created": now,
        "currency": charge_obj["currency"],
        "customer": charge_obj["customer"],
        "customer_account": None,
        "destination_details": {"card": {"reference": None, "reference_status": "pending",
                                         "reference_type": "acquirer_reference_number",
                                         "type": "refund"}, "type": "card"},
        "metadata": metadata,
        "payment_intent": charge_obj["payment_intent"],
        "payment_method": charge_obj["payment_method"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }

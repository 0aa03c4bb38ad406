"""Stripe events for tests, shaped like the sandbox's (and Stripe's 2026-10-28 API) payloads, and signed."""
from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any, Optional

from billing.gateway.types import Subscription

from billing.webhooks.signature import header_for

SECRET = "whsec_test_webhooks_primary"
OLD_SECRET = "whsec_test_webhooks_previous"
PERIOD_START = 1_785_542_400  # 2026-08-01 00:00 UTC
PERIOD_END = PERIOD_START + 31 * 86400
_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_test{next(_ids):06d}"


def event(event_type: str, obj: dict[str, Any], *, created: Optional[int] = None, event_id: Optional[str] = None,
          livemode: bool = False, previous: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {"id": event_id or new_id("evt"), "object": "event", "api_version": "2026-10-28.endive",
            "created": int(time.time()) if created is None else created, "data": data, "livemode": livemode,
            "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}, "type": event_type}


def subscription(sub_id: str = "sub_test", customer: str = "cus_acme", status: str = "active",
                 price: str = "price_pro", amount: int = 9900, cancel_at_period_end: bool = False,
                 period_start: int = PERIOD_START, period_end: int = PERIOD_END,
                 default_payment_method: Optional[str] = None, schedule: Optional[str] = None,
                 latest_invoice: Optional[str] = None) -> dict[str, Any]:
    return {
        "id": sub_id, "object": "subscription", "customer": customer, "status": status, "currency": "brl",
        "cancel_at_period_end": cancel_at_period_end, "canceled_at": period_start + 10 if status == "canceled" else None,
        "cancel_at": period_end if cancel_at_period_end else None, "trial_end": None,
        "default_payment_method": default_payment_method, "latest_invoice": latest_invoice, "schedule": schedule,
        "metadata": {"app_id": "1"}, "created": period_start, "livemode": False,
        "items": {"object": "list", "data": [{
            "id": f"si_{sub_id}", "object": "subscription_item", "quantity": 1,
            "price": {"id": price, "object": "price", "unit_amount": amount, "currency": "brl",
                      "recurring": {"interval": "month", "interval_count": 1}},
            "current_period_start": period_start, "current_period_end": period_end}]},
    }


def invoice(invoice_id: str = "in_test", customer: str = "cus_acme", subscription_id: Optional[str] = "sub_test",
            status: str = "open", amount_due: int = 9900, amount_paid: int = 0, created: int = PERIOD_START,
            payment_intents: tuple[str, ...] = (), billing_reason: str = "subscription_cycle",
            attempt_count: int = 1, number: str = "ACME-0001") -> dict[str, Any]:
    parent = None
    if subscription_id:
        parent = {"type": "subscription_details", "subscription_details": {"subscription": subscription_id}}
    return {
        "id": invoice_id, "object": "invoice", "customer": customer, "status": status, "number": number,
        "billing_reason": billing_reason, "amount_due": amount_due, "amount_paid": amount_paid,
        "amount_remaining": amount_due - amount_paid, "total": amount_due, "currency": "brl",
        "period_start": created, "period_end": created, "created": created, "attempt_count": attempt_count,
        "hosted_invoice_url": f"http://sandbox.test/invoice/{invoice_id}",
        "invoice_pdf": f"http://sandbox.test/invoice/{invoice_id}/pdf", "livemode": False,
        "status_transitions": {"paid_at": created + 5 if status == "paid" else None,
                               "finalized_at": created},
        "parent": parent, "lines": {"object": "list", "data": []},
        "payments": {"object": "list", "data": [
            {"id": f"inpay_{pi}", "object": "invoice_payment", "invoice": invoice_id,
             "payment": {"type": "payment_intent", "payment_intent": pi}} for pi in payment_intents]},
    }


def payment_intent(pi_id: str = "pi_test", customer: str = "cus_acme", status: str = "succeeded",
                   amount: int = 9900, charge: Optional[str] = "ch_test",
                   error_code: Optional[str] = None) -> dict[str, Any]:
    return {
        "id": pi_id, "object": "payment_intent", "amount": amount,
        "amount_received": amount if status == "succeeded" else 0, "amount_capturable": 0,
        "currency": "brl", "customer": customer, "status": status, "capture_method": "automatic",
        "payment_method": "pm_test", "latest_charge": charge, "metadata": {}, "livemode": False,
        "last_payment_error": {"code": "card_declined", "decline_code": error_code, "type": "card_error"}
        if error_code else None,
    }


def charge(charge_id: str = "ch_test", pi_id: str = "pi_test", customer: str = "cus_acme", amount: int = 9900,
           refunds: tuple[tuple[str, int], ...] = (), created: int = PERIOD_START,
           include_refunds: bool = True) -> dict[str, Any]:
    refunded = sum(amount for _, amount in refunds)
    data = {
        "id": charge_id, "object": "charge", "amount": amount, "amount_captured": amount,
        "amount_refunded": refunded, "refunded": refunded >= amount, "captured": True, "currency": "brl",
        "customer": customer, "payment_intent": pi_id, "status": "succeeded", "paid": True, "created": created,
        "livemode": False,
    }
    if include_refunds:
        data["refunds"] = {"object": "list", "has_more": False, "data": [
            {"id": refund_id, "object": "refund", "amount": value, "currency": "brl", "charge": charge_id,
             "payment_intent": pi_id, "status": "succeeded", "created": created + 60}
            for refund_id, value in refunds]}
    return data


def checkout_session(session_id: str, customer: str = "cus_acme", subscription_id: Optional[str] = None,
                     mode: str = "subscription") -> dict[str, Any]:
    return {"id": session_id, "object": "checkout.session", "mode": mode, "status": "complete",
            "payment_status": "paid", "customer": customer, "subscription": subscription_id, "livemode": False}


def body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def signed_headers(raw: bytes, secret: str = SECRET, timestamp: Optional[int] = None) -> dict[str, str]:
    return {"Stripe-Signature": header_for(secret, raw, timestamp), "Content-Type": "application/json"}


def post(client, payload: dict[str, Any] | bytes, secret: str = SECRET, **kwargs):
    """POST an event to the endpoint the way Stripe does (signed raw JSON)."""
    raw = payload if isinstance(payload, bytes) else body(payload)
    return client.post("/webhooks/kernel/stripe", data=raw, headers=signed_headers(raw, secret), **kwargs)


@dataclass
class PresentStripe:
    """Stripe at the network edge for unit tests: it answers with the subscription's present state."""

    truth: dict
    livemode: bool = False

    def retrieve_subscription(self, subscription_id: str) -> Subscription:
        assert subscription_id == self.truth["id"]
        return Subscription.from_stripe(self.truth)

"""Subscription, subscription item and subscription schedule shapes."""

from __future__ import annotations

from typing import Any

from ..ids import new_id
from .catalog import plan_from_price


def subscription_item(now: int, *, subscription_id: str, price: dict[str, Any], quantity: int,
                      period_start: int, period_end: int, metadata: dict[str, str] | None = None,
                      item_id: str | None = None) -> dict[str, Any]:
    return {
        "id": item_id or new_id("si"),
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": now,
        "current_period_end": period_end,
        "current_period_start": period_start,
        "discounts": [],
        "metadata": metadata or {},
        "plan": plan_from_price(price),
        "price": price,
        "quantity": quantity,
        "subscription": subscription_id,
        "tax_rates": [],
    }


def subscription(now: int, *, subscription_id: str, customer: str, currency: str,
                 items: list[dict[str, Any]], default_payment_method: str | None,
                 metadata: dict[str, str], status: str, anchor: int,
                 trial_start: int | None, trial_end: int | None,
                 description: str | None = None) -> dict[str, Any]:
    return {
        "id": subscription_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": anchor,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "classic"},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": now,
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": default_payment_method,
        "default_source": None,
        "default_tax_rates": [],
        "description": description,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "custom_fields": None, "description": None,
                             "footer": None, "issuer": {"type": "self"}},
        "items": {
            "object": "list",
            "data": items,
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": metadata,
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                             "save_default_payment_method": "off"},
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": now,
        "status": status,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": trial_end,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": trial_start,
    }


def schedule_phase(*, start: int, end: int | None, items: list[dict[str, Any]], currency: str,
                   proration_behavior: str, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "add_invoice_items": [],
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": None,
        "billing_thresholds": None,
        "collection_method": None,
        "currency": currency,
        "default_payment_method": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "end_date": end,
        "invoice_settings": None,
        "items": [
            {"billing_thresholds": None, "discounts": [], "metadata": {}, "plan": item["price"],
             "price": item["price"], "quantity": item["quantity"], "tax_rates": []}
            for item in items
        ],
        "metadata": metadata or {},
        "on_behalf_of": None,
        "proration_behavior": proration_behavior,
        "start_date": start,
        "transfer_data": None,
        "trial_end": None,
    }


def subscription_schedule(now: int, *, customer: str, subscription_id: str,
                          phases: list[dict[str, Any]], end_behavior: str,
                          metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "id": new_id("sub_sched"),
        "object": "subscription_schedule",
        "application": None,
        "billing_mode": {"flexible": None, "type": "classic"},
        "canceled_at": None,
        "completed_at": None,
        "created": now,
        "current_phase": None,
        "customer": customer,
        "customer_account": None,
        "default_settings": {
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": "automatic",
            "billing_thresholds": None,
            "collection_method": "charge_automatically",
            "default_payment_method": None,
            "description": None,
            "invoice_settings": {"account_tax_ids": None, "custom_fields": None,
                                 "days_until_due": None, "description": None, "footer": None,
                                 "issuer": {"type": "self"}},
            "on_behalf_of": None,
            "transfer_data": None,
        },
        "end_behavior": end_behavior,
        "livemode": False,
        "metadata": metadata,
        "pause_schedules": [],
        "phases": phases,
        "released_at": None,
        "released_subscription": None,
        "status": "active",
        "subscription": subscription_id,
        "test_clock": None,
    }

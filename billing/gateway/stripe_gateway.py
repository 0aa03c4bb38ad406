"""Every call the kernel makes to Stripe, and the only module that imports ``stripe``.

The same class talks to real Stripe and to the local sandbox: only the base URL
and the key differ (warehouse's billing service does the same). Every create or
charge carries an idempotency key derived from the action, Stripe's errors become
``billing.errors``, and timeouts and retries are set here on purpose.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import stripe

from billing.errors import (
    CardDeclined,
    GatewayError,
    GatewayUnavailable,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
)
from billing.gateway.types import (
    Card,
    CheckoutSession,
    Customer,
    Invoice,
    Page,
    PaymentIntent,
    Refund,
    Subscription,
    SubscriptionSchedule,
    object_id,
)
from billing import metrics
from billing.money import Money

log = logging.getLogger(__name__)

# Connect fast, read patiently: an invoice payment can take Stripe several seconds,
# but a host that does not accept the connection at once is down.
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 30.0
# Retries of connection errors, 409 lock conflicts, 429 and 5xx, with Stripe's own backoff.
# POSTs are safe to retry because each carries an idempotency key.
MAX_NETWORK_RETRIES = 2
LIST_PAGE_SIZE = 100
SANDBOX_API_KEY = "sk_test_sandbox"


class StripeGateway:
    """Stripe, real or sandbox. Build one with ``for_stripe`` or ``for_sandbox``."""

    def __init__(self, api_key: str, *, api_base: Optional[str] = None, sandbox: bool = False,
                 max_network_retries: int = MAX_NETWORK_RETRIES,
                 timeout: tuple[float, float] = (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
                 test_clock: Optional[str] = None):
        if test_clock and api_key.startswith(("sk_live_", "rk_live_")):
            raise ValueError("test clocks exist only in test mode")
        bases = {"api": api_base, "files": api_base, "connect": api_base} if api_base else None
        self._client = stripe.StripeClient(
            api_key,
            base_addresses=bases,
            max_network_retries=max_network_retries,
            http_client=stripe.RequestsClient(timeout=timeout),
        )
        self.sandbox = sandbox
        self.api_base = api_base or "https://api.stripe.com"
        self.livemode = api_key.startswith(("sk_live_", "rk_live_"))
        # A test clock (test mode only) that new customers are created on and that "now" follows.
        self.test_clock = test_clock
        self._v1 = self._client.v1
        # Run before every request to Stripe: the portal sets it to refuse a call made while an owner
        # action's database transaction is open (portal/payments.py). ``now()`` is exempt: it reads a
        # test clock (test mode only), and the billing clock asks it from anywhere.
        self.before_request: Optional[Callable[[], None]] = None

    @classmethod
    def for_stripe(cls, api_key: str, **kwargs) -> "StripeGateway":
        return cls(api_key, **kwargs)

    @classmethod
    def for_sandbox(cls, url: str, api_key: str = SANDBOX_API_KEY, **kwargs) -> "StripeGateway":
        return cls(api_key, api_base=url.rstrip("/"), sandbox=True, **kwargs)

    def describe(self) -> str:
        """For the start-up log line: which Stripe, never the key."""
        if self.sandbox:
            return f"Stripe sandbox at {self.api_base} (no real charges)"
        return "Stripe LIVE mode (real charges)" if self.livemode else "Stripe test mode"

    # ------------------------------------------------------------------ customers

    def create_customer(self, *, app_id: int, email: Optional[str], name: str,
                        test_clock: Optional[str] = None, preferred_locales: Sequence[str] = (),
                        address: Optional[Mapping[str, Optional[str]]] = None,
                        tax_id: Optional[tuple[str, str]] = None) -> Customer:
        """``preferred_locales`` (Stripe's tags, "pt-BR") set the language of Stripe's invoices, receipts and e-mails;
        ``address`` (Stripe's keys) and ``tax_id`` (``("br_cpf", digits)``) are printed on its invoices."""
        params: dict[str, Any] = {"name": name, "metadata": {"app_id": str(app_id)}}
        if email:
            params["email"] = email
        if preferred_locales:
            params["preferred_locales"] = list(preferred_locales)
        if address:
            params["address"] = {key: value or "" for key, value in address.items()}
        if tax_id:
            params["tax_id_data"] = [{"type": tax_id[0], "value": tax_id[1]}]
        test_clock = test_clock or self.test_clock
        if test_clock:
            params["test_clock"] = test_clock
        data = self._call(self._v1.customers.create, params, key=customer_create_key(app_id, params))
        return Customer.from_stripe(data)

    def retrieve_customer(self, customer_id: str) -> Customer:
        return Customer.from_stripe(self._call(self._v1.customers.retrieve, customer_id))

    def update_billing_details(self, customer_id: str, *, name: str, email: Optional[str],
                               address: Mapping[str, Optional[str]], change: str) -> Customer:
        """Who the customer's invoices are made out to. ``change`` names this edit (its audit entry), so a retry
        replays it and a later edit, even back to earlier values, is a new request."""
        params = {"name": name, "email": email or "", "address": {key: value or "" for key, value in address.items()}}
        data = self._call(self._v1.customers.update, customer_id, params,
                          key=f"customer:{customer_id}:update:billing_details:{change}")
        return Customer.from_stripe(data)

    def list_tax_ids(self, customer_id: str) -> list[tuple[str, str, str]]:
        """The customer's tax ids as ``(id, type, value)`` (Stripe keeps at most a few per customer)."""
        data = self._call(self._v1.customers.tax_ids.list, customer_id, {"limit": 100})
        return [(item["id"], item["type"], item["value"]) for item in data["data"]]

    def add_tax_id(self, customer_id: str, kind: str, value: str, *, change: str) -> str:
        """Add a tax id (``tax_id_data`` is create-only in Stripe); returns its id."""
        data = self._call(self._v1.customers.tax_ids.create, customer_id, {"type": kind, "value": value},
                          key=f"customer:{customer_id}:tax_id:create:{kind}:{value}:{change}")
        return data["id"]

    def delete_tax_id(self, customer_id: str, tax_id: str) -> None:
        """Remove a tax id; one already gone is not an error (a retry after a lost answer)."""
        try:
            self._call(self._v1.customers.tax_ids.delete, customer_id, tax_id)
        except NotFound:
            pass

    def set_preferred_locales(self, customer_id: str, preferred_locales: Sequence[str], *, change: str) -> Customer:
        """The languages of Stripe's invoices, receipts and e-mails to the customer. ``change`` names the change
        (who changed their language, and when), so a retry replays it and a later change is a new request."""
        data = self._call(self._v1.customers.update, customer_id, {"preferred_locales": list(preferred_locales)},
                          key=f"customer:{customer_id}:update:preferred_locales:{','.join(preferred_locales)}:{change}")
        return Customer.from_stripe(data)

    def set_default_payment_method(self, customer_id: str, payment_method_id: str,
                                   subscription_id: Optional[str] = None, *, change: Optional[str] = None) -> Card:
        """Make ``payment_method_id`` the card future invoices of the customer (and subscription) charge.

        ``change`` names the occasion (the Checkout Session that saved the card): a retry replays it, and making
        an earlier card the default again later is a new request."""
        suffix = f":{change}" if change else ""
        self._call(self._v1.customers.update, customer_id,
                   {"invoice_settings": {"default_payment_method": payment_method_id}},
                   key=f"customer:{customer_id}:default_payment_method:{payment_method_id}{suffix}" if change else None)
        if subscription_id:
            self._call(self._v1.subscriptions.update, subscription_id,
                       {"default_payment_method": payment_method_id},
                       key=(f"subscription:{subscription_id}:default_payment_method:{payment_method_id}{suffix}"
                            if change else None))
        return self.retrieve_card(payment_method_id)

    def set_default_payment_method_in_full(self, customer_id: str, payment_method_id: str,
                                           subscription_id: Optional[str], *,
                                           change: str) -> tuple[Card, Optional[SubscriptionState]]:
        """``set_default_payment_method``, with the card and the subscription after the change (its schedule and
        card) expanded into the two answers instead of asked for again."""
        data = self._call(self._v1.customers.update, customer_id,
                          {"invoice_settings": {"default_payment_method": payment_method_id},
                           "expand": ["invoice_settings.default_payment_method"]},
                          key=f"customer:{customer_id}:default_payment_method:{payment_method_id}:{change}",
                          reread=self._v1.customers.retrieve)
        method = (data.get("invoice_settings") or {}).get("default_payment_method")
        card = Card.from_stripe(method) if isinstance(method, dict) else self.retrieve_card(payment_method_id)
        if not subscription_id:
            return card, None
        data = self._call(self._v1.subscriptions.update, subscription_id,
                          {"default_payment_method": payment_method_id, "expand": list(IN_FULL)},
                          key=f"subscription:{subscription_id}:default_payment_method:{payment_method_id}:{change}",
                          reread=self._v1.subscriptions.retrieve)
        return card, _in_full(data)

    def attach_payment_method(self, customer_id: str, payment_method_id: str) -> Card:
        """Attach a card (from Stripe.js, or a test id such as ``pm_card_visa``) to the customer."""
        data = self._call(self._v1.payment_methods.attach, payment_method_id, {"customer": customer_id})
        return Card.from_stripe(data)

    def retrieve_card(self, payment_method_id: str) -> Card:
        return Card.from_stripe(self._call(self._v1.payment_methods.retrieve, payment_method_id))

    # ------------------------------------------------------------------ checkout

    def create_subscription_checkout(self, *, customer_id: str, price_id: str, app_id: int, plan_code: str,
                                     success_url: str, cancel_url: str, attempt: str,
                                     trial_days: int = 0, locale: Optional[str] = None) -> CheckoutSession:
        """A hosted Checkout page that starts a subscription.

        ``attempt`` identifies one press of the button (a token rendered into the form),
        so a double submit opens the same session instead of two.
        """
        metadata = {"app_id": str(app_id), "plan": plan_code}
        subscription_data: dict[str, Any] = {"metadata": metadata}
        if trial_days:
            subscription_data["trial_period_days"] = trial_days
        params = {
            "mode": "subscription",
            "customer": customer_id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "client_reference_id": str(app_id),
            "metadata": metadata,
            "subscription_data": subscription_data,
        }
        if locale:  # the language of the hosted page: the owner's (Stripe's tag, "pt-BR")
            params["locale"] = locale
        data = self._call(self._v1.checkout.sessions.create, params,
                          key=f"checkout:subscription:app:{app_id}:price:{price_id}:attempt:{attempt}")
        return CheckoutSession.from_stripe(data)

    def create_setup_checkout(self, *, customer_id: str, app_id: int, currency: str, success_url: str,
                              cancel_url: str, attempt: str, submit_message: str | None = None,
                              locale: Optional[str] = None) -> CheckoutSession:
        """A hosted Checkout page that saves a new card (setup mode), charging nothing by itself.

        ``currency`` is what the card will be charged in (the plan's, or the invoice's): Stripe offers the
        payment methods that can pay in it.

        ``submit_message`` is shown by the save button (Stripe's ``custom_text.submit``): when the card
        is saved to pay an invoice, it says the amount, which a setup page does not show otherwise."""
        params = {
            "mode": "setup",
            "customer": customer_id,
            "currency": currency.lower(),
            "success_url": success_url,
            "cancel_url": cancel_url,
            "client_reference_id": str(app_id),
            "metadata": {"app_id": str(app_id), "purpose": "payment_method"},
            "setup_intent_data": {"metadata": {"app_id": str(app_id)}},
        }
        if submit_message:
            params["custom_text"] = {"submit": {"message": submit_message}}
        if locale:
            params["locale"] = locale
        data = self._call(self._v1.checkout.sessions.create, params,
                          key=f"checkout:setup:app:{app_id}:attempt:{attempt}")
        return CheckoutSession.from_stripe(data)

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        data = self._call(self._v1.checkout.sessions.retrieve, session_id, {"expand": ["setup_intent"]})
        return CheckoutSession.from_stripe(data)

    def retrieve_checkout_session_in_full(
            self, session_id: str) -> tuple[CheckoutSession, Optional[SubscriptionState], Optional[Invoice]]:
        """The session with the subscription it started (its schedule, card and first invoice) expanded into the one
        answer: coming back from Checkout waits for one round trip instead of three in a row."""
        data = self._call(self._v1.checkout.sessions.retrieve, session_id, {"expand": [
            "setup_intent", "subscription", "subscription.latest_invoice", "subscription.schedule",
            "subscription.default_payment_method"]})
        subscription = data.get("subscription")
        if not isinstance(subscription, dict):
            return CheckoutSession.from_stripe(data), None, None
        invoice = subscription.get("latest_invoice")
        return (CheckoutSession.from_stripe(data), _in_full(subscription),
                Invoice.from_stripe(invoice) if isinstance(invoice, dict) else None)

    def expire_checkout_session(self, session_id: str) -> CheckoutSession:
        """Close an open Checkout Session so it can no longer be paid (a newer one replaces it); a session
        expires once, so its id names the request."""
        return CheckoutSession.from_stripe(self._call(self._v1.checkout.sessions.expire, session_id,
                                                      key=f"checkout_session:{session_id}:expire"))

    # ------------------------------------------------------------------ subscriptions

    def retrieve_subscription(self, subscription_id: str) -> Subscription:
        return Subscription.from_stripe(self._call(self._v1.subscriptions.retrieve, subscription_id))

    def retrieve_subscription_in_full(self, subscription_id: str) -> SubscriptionState:
        """The subscription with its schedule and its default card, expanded into one answer: one round trip
        where a sync used to make three in a row, and the three read at the same moment."""
        data = self._call(self._v1.subscriptions.retrieve, subscription_id, {"expand": list(IN_FULL)})
        return _in_full(data)

    def create_subscription(self, *, customer_id: str, price_id: str, app_id: int, attempt: str,
                            payment_method_id: Optional[str] = None, trial_days: int = 0) -> Subscription:
        """Start a subscription without Checkout (a card already on file); used by tests and the CLI."""
        params: dict[str, Any] = {
            "customer": customer_id,
            "items": [{"price": price_id}],
            "metadata": {"app_id": str(app_id)},
            "payment_behavior": "error_if_incomplete",
        }
        if payment_method_id:
            params["default_payment_method"] = payment_method_id
        if trial_days:
            params["trial_period_days"] = trial_days
        data = self._call(self._v1.subscriptions.create, params,
                          key=f"subscription:create:app:{app_id}:price:{price_id}:attempt:{attempt}")
        return Subscription.from_stripe(data)

    def preview_price_change(self, subscription: Subscription, new_price_id: str,
                             proration_date: int) -> Invoice:
        """What changing the price now would invoice, via Create Preview Invoice (no side effect)."""
        params = {
            "customer": subscription.customer,
            "subscription": subscription.id,
            "subscription_details": {
                "items": [{"id": subscription.item_id, "price": new_price_id}],
                "proration_date": proration_date,
                "proration_behavior": "always_invoice",
            },
        }
        return Invoice.from_stripe(self._call(self._v1.invoices.create_preview, params))

    def change_price_now(self, subscription: Subscription, new_price_id: str, *, proration_date: int,
                         attempt: str) -> tuple[Subscription, Optional[Invoice]]:
        """Upgrade: switch price at once, invoice the proration and charge it now (``change_price_now_in_full``)."""
        state, invoice = self.change_price_now_in_full(subscription, new_price_id, proration_date=proration_date,
                                                       attempt=attempt)
        return state[0], invoice

    def change_price_now_in_full(self, subscription: Subscription, new_price_id: str, *, proration_date: int,
                                 attempt: str) -> tuple[SubscriptionState, Optional[Invoice]]:
        """Upgrade: switch price at once, invoice the proration and charge it now; the subscription after the
        change (with its schedule and card) and the proration's invoice, expanded into the one answer.

        ``error_if_incomplete`` makes Stripe refuse the whole change when the charge
        fails, so a declined card leaves the old plan in place and nothing to undo.
        ``attempt`` names one confirmation (a token in the confirm form): a double
        submit replays the first answer instead of charging twice, while a retry
        after a decline comes from a new form and is a new attempt.
        """
        key = upgrade_key(subscription.id, subscription.price_id, new_price_id, attempt)
        params = {
            "items": [{"id": subscription.item_id, "price": new_price_id}],
            "proration_behavior": "always_invoice",
            "proration_date": proration_date,
            "payment_behavior": "error_if_incomplete",
            # What an owner waits for after the charge, in this answer instead of two more round trips.
            "expand": ["latest_invoice", *IN_FULL],
        }
        data = self._call(self._v1.subscriptions.update, subscription.id, params, key=key,
                          reread=self._v1.subscriptions.retrieve)
        invoice = data.get("latest_invoice")
        return _in_full(data), Invoice.from_stripe(invoice) if isinstance(invoice, dict) else None

    def schedule_price_change(self, subscription: Subscription, new_price_id: str,
                              attempt: Optional[str] = None) -> SubscriptionSchedule:
        """Downgrade at the period end (``schedule_price_change_in_full``); the schedule."""
        schedule = self.schedule_price_change_in_full(subscription, new_price_id, attempt)[1]
        assert schedule is not None
        return schedule

    def schedule_price_change_in_full(self, subscription: Subscription, new_price_id: str,
                                      attempt: Optional[str] = None) -> SubscriptionState:
        """Downgrade: keep the current price until the period ends, then switch (a subscription schedule).

        ``attempt`` names one request to schedule: after a schedule was released (the
        owner undid a downgrade), scheduling again in the same period is a new
        attempt and must create a new schedule, not replay the released one.
        """
        period = int(subscription.current_period_start.timestamp()) if subscription.current_period_start else 0
        if subscription.schedule:
            schedule_id = subscription.schedule
        else:
            key = f"schedule:create:{subscription.id}:period:{period}"
            created = self._call(self._v1.subscription_schedules.create,
                                 {"from_subscription": subscription.id},
                                 key=f"{key}:attempt:{attempt}" if attempt else key)
            schedule_id = created["id"]
        params: dict[str, Any] = {
            "end_behavior": "release",
            "proration_behavior": "none",
            "phases": [
                {
                    "items": [{"price": subscription.price_id, "quantity": 1}],
                    "start_date": int(subscription.current_period_start.timestamp()),
                    "end_date": int(subscription.current_period_end.timestamp()),
                },
                {"items": [{"price": new_price_id, "quantity": 1}], "duration": {"interval": "month",
                                                                                   "interval_count": 1}},
            ],
            # The subscription as the schedule leaves it, in this answer instead of another round trip.
            "expand": ["subscription", "subscription.default_payment_method"],
        }
        data = self._call(self._v1.subscription_schedules.update, schedule_id, params,
                          key=f"schedule:{schedule_id}:update:{subscription.price_id}->{new_price_id}:period:{period}",
                          reread=self._v1.subscription_schedules.retrieve)
        attached = data["subscription"]
        method = attached.get("default_payment_method")
        return (Subscription.from_stripe(attached), SubscriptionSchedule.from_stripe(data),
                Card.from_stripe(method) if isinstance(method, dict) else None)

    def release_schedule(self, schedule_id: str) -> None:
        """Undo a scheduled downgrade: the subscription stays on its current price. A schedule is released once."""
        self._call(self._v1.subscription_schedules.release, schedule_id, key=f"schedule:{schedule_id}:release")

    def retrieve_schedule(self, schedule_id: str) -> SubscriptionSchedule:
        return SubscriptionSchedule.from_stripe(self._call(self._v1.subscription_schedules.retrieve, schedule_id))

    def set_cancel_at_period_end(self, subscription_id: str, cancel: bool, *,
                                 change: Optional[str] = None) -> Subscription:
        """Cancel at the end of the paid period, or resume before it ends (``set_cancel_at_period_end_in_full``)."""
        return self.set_cancel_at_period_end_in_full(subscription_id, cancel, change=change)[0]

    def set_cancel_at_period_end_in_full(self, subscription_id: str, cancel: bool, *,
                                         change: Optional[str] = None) -> SubscriptionState:
        """Cancel at the end of the paid period (access kept until then), or resume before it ends; the
        subscription after the change with its schedule and card, in the one answer.

        ``change`` names the occasion (the owner action's claim): cancel, resume and cancel again are three
        requests, while a retry of one replays it."""
        key = f"subscription:{subscription_id}:cancel_at_period_end:{str(cancel).lower()}:{change}" if change else None
        data = self._call(self._v1.subscriptions.update, subscription_id,
                          {"cancel_at_period_end": cancel, "expand": list(IN_FULL)}, key=key,
                          reread=self._v1.subscriptions.retrieve)
        return _in_full(data)

    def cancel_now(self, subscription_id: str) -> Subscription:
        return Subscription.from_stripe(self._call(self._v1.subscriptions.cancel, subscription_id))

    def list_subscriptions(self, *, starting_after: Optional[str] = None, limit: int = LIST_PAGE_SIZE,
                           customer: Optional[str] = None) -> Page[Subscription]:
        params: dict[str, Any] = {"status": "all", "limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        if customer:
            params["customer"] = customer
        data = self._get_json("/v1/subscriptions", params)
        return Page([Subscription.from_stripe(item) for item in data["data"]], bool(data["has_more"]))

    # ------------------------------------------------------------------ invoices

    def retrieve_invoice(self, invoice_id: str) -> Invoice:
        return Invoice.from_stripe(self._call(self._v1.invoices.retrieve, invoice_id))

    def list_invoices(self, *, customer: Optional[str] = None, subscription: Optional[str] = None,
                      starting_after: Optional[str] = None, limit: int = LIST_PAGE_SIZE,
                      created_gte: Optional[int] = None) -> Page[Invoice]:
        params: dict[str, Any] = {"limit": limit}
        for name, value in (("customer", customer), ("subscription", subscription),
                            ("starting_after", starting_after)):
            if value:
                params[name] = value
        if created_gte is not None:
            params["created"] = {"gte": created_gte}
        data = self._get_json("/v1/invoices", params)
        return Page([Invoice.from_stripe(item) for item in data["data"]], bool(data["has_more"]))

    def list_invoice_payment_intents(self, invoice_id: str) -> tuple[str, ...]:
        """The PaymentIntents that paid (or tried to pay) an invoice: its ``payments`` are not in every payload."""
        data = self._call(self._v1.invoice_payments.list, {"invoice": invoice_id, "limit": LIST_PAGE_SIZE})
        return tuple(pi for pi in (object_id((item.get("payment") or {}).get("payment_intent"))
                                   for item in data["data"]) if pi)

    def pay_invoice(self, invoice_id: str, *, attempt: str, payment_method_id: Optional[str] = None) -> Invoice:
        """Charge an open invoice now (a dunning retry, or the owner paying). ``attempt`` names the try."""
        params: dict[str, Any] = {"off_session": True}
        if payment_method_id:
            params["payment_method"] = payment_method_id
        data = self._call(self._v1.invoices.pay, invoice_id, params, key=pay_invoice_key(invoice_id, attempt),
                          reread=self._v1.invoices.retrieve)
        return Invoice.from_stripe(data)

    # ------------------------------------------------------------------ bulk walks (reconciliation)

    def _get_json(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """A GET read as plain JSON: for list pages, where the SDK's conversion of every object into nested
        ``StripeObject``s is most of a long walk's time (figures in docs/benchmarks.md, "Figures that used to
        be quoted in the code"). Same request, same retries and errors, same values."""
        if self.before_request is not None:
            self.before_request()
        with translate_errors():
            response = self._client.raw_request("get", path, **params)
        return response.data

    # ------------------------------------------------------------------ one-off charges

    def create_payment_intent(self, amount: Money, *, customer_id: str, payment_method_id: str, purpose: str,
                              manual_capture: bool = False, description: str = "",
                              metadata: Optional[Mapping[str, str]] = None) -> PaymentIntent:
        """Create and confirm a one-off charge. ``purpose`` names it uniquely (e.g. "setup-fee:app:3")."""
        params = {
            "amount": amount.amount,
            "currency": amount.currency.lower(),
            "customer": customer_id,
            "payment_method": payment_method_id,
            "capture_method": "manual" if manual_capture else "automatic",
            "confirm": True,
            "off_session": True,
            "description": description,
            "metadata": dict(metadata or {}),
        }
        data = self._call(self._v1.payment_intents.create, params,
                          key=f"payment_intent:create:{purpose}:{amount.amount}:{amount.currency}")
        return PaymentIntent.from_stripe(data)

    def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntent:
        return PaymentIntent.from_stripe(self._call(self._v1.payment_intents.retrieve, payment_intent_id))

    def capture_payment_intent(self, payment_intent_id: str, amount: Optional[Money] = None) -> PaymentIntent:
        params = {"amount_to_capture": amount.amount} if amount else {}
        captured = amount.amount if amount else "all"
        data = self._call(self._v1.payment_intents.capture, payment_intent_id, params,
                          key=f"payment_intent:{payment_intent_id}:capture:{captured}")
        return PaymentIntent.from_stripe(data)

    def cancel_payment_intent(self, payment_intent_id: str) -> PaymentIntent:
        return PaymentIntent.from_stripe(self._call(self._v1.payment_intents.cancel, payment_intent_id))

    def create_refund(self, *, payment_intent_id: str, reference: str, amount: Optional[Money] = None,
                      reason: Optional[str] = None) -> Refund:
        """Refund all or part of a payment. ``reference`` names this refund (e.g. a support ticket)."""
        params: dict[str, Any] = {"payment_intent": payment_intent_id}
        if amount:
            params["amount"] = amount.amount
        if reason:
            params["reason"] = reason
        data = self._call(self._v1.refunds.create, params,
                          key=f"refund:{payment_intent_id}:{reference}:{amount.amount if amount else 'all'}")
        return Refund.from_stripe(data)

    # ------------------------------------------------------------------ Billing Gateway API

    def tokenize_card(self, *, number: str, exp_month: int, exp_year: int, cvc: Optional[str],
                      attempt: str) -> Card:
        """A PaymentMethod from raw card data (the sandbox, or a Stripe account with raw-card-data access).

        The key names the API request, never the card: keys are stored by Stripe and in our logs.
        """
        card: dict[str, Any] = {"number": number, "exp_month": exp_month, "exp_year": exp_year}
        if cvc:
            card["cvc"] = cvc
        data = self._call(self._v1.payment_methods.create, {"type": "card", "card": card},
                          key=f"payment_method:create:tokenize:{attempt}")
        return Card.from_stripe(data)

    def authorize(self, amount: Money, *, payment_method_id: str, capture: bool, reference: str,
                  metadata: Optional[Mapping[str, str]] = None) -> PaymentIntent:
        """Create and confirm a PaymentIntent without a customer: held (manual capture) or captured at once.

        ``reference`` names the request (app and the client's idempotency key). A decline
        raises ``CardDeclined``; the declined PaymentIntent stays in Stripe as a record.
        """
        params = {
            "amount": amount.amount,
            "currency": amount.currency.lower(),
            "payment_method": payment_method_id,
            "payment_method_types": ["card"],
            "capture_method": "automatic" if capture else "manual",
            "confirm": True,
            "metadata": dict(metadata or {}),
        }
        data = self._call(self._v1.payment_intents.create, params,
                          key=f"payment_intent:authorize:{reference}:{amount.amount}:{amount.currency}")
        return PaymentIntent.from_stripe(data)

    def list_refunds(self, *, payment_intent_id: str) -> list[Refund]:
        """Every refund of a payment (a charge's ``refunds`` list is only in payloads that expanded it)."""
        data = self._call(self._v1.refunds.list, {"payment_intent": payment_intent_id, "limit": LIST_PAGE_SIZE})
        return [Refund.from_stripe(item) for item in data["data"]]

    # ------------------------------------------------------------------ catalogue

    def ensure_price(self, *, plan_code: str, name: str, amount: Money, interval: str = "month") -> str:
        """The id of the recurring price for this plan and amount, creating product and price when missing.

        Prices are immutable in Stripe, so a new amount gets a new price; the lookup
        key names plan, amount and currency so a rerun finds what it made before.
        """
        lookup_key = f"kernel_{plan_code}_{amount.currency.lower()}_{amount.amount}_{interval}"
        found = self._call(self._v1.prices.list, {"lookup_keys": [lookup_key], "limit": 1})
        if found["data"]:
            return found["data"][0]["id"]
        product_id = f"kernel_{plan_code}"
        try:
            self._call(self._v1.products.retrieve, product_id)
        except NotFound:
            self._call(self._v1.products.create, {"id": product_id, "name": f"Kernel {name}",
                                                  "metadata": {"plan": plan_code}},
                       key=f"product:create:{product_id}")
        price = self._call(
            self._v1.prices.create,
            {"product": product_id, "unit_amount": amount.amount, "currency": amount.currency.lower(),
             "recurring": {"interval": interval}, "lookup_key": lookup_key, "metadata": {"plan": plan_code}},
            key=f"price:create:{lookup_key}",
        )
        return price["id"]

    def archive_price(self, price_id: str) -> None:
        """Stop selling a price (Stripe never deletes one); subscriptions already on it keep renewing at it."""
        self._call(self._v1.prices.update, price_id, {"active": False}, key=f"price:{price_id}:archive")

    # ------------------------------------------------------------------ health

    def ping(self) -> None:
        """The cheapest authenticated read, not retried: raises a ``GatewayError`` when Stripe (or the sandbox)
        does not answer or refuses the key. For readiness probes."""
        with translate_errors():
            self._v1.customers.list({"limit": 1}, options={"max_network_retries": 0})

    # ------------------------------------------------------------------ time

    def now(self) -> datetime:
        """Stripe's idea of now, by the same rule against Stripe and the sandbox: the ``frozen_time`` of
        the gateway's test clock when it has one (test mode), the system clock otherwise."""
        if not self.test_clock:
            return datetime.now(timezone.utc)
        # Asked often and cheap to ask again: no retries, so an unreachable Stripe answers at once.
        with translate_errors():
            data = self._v1.test_helpers.test_clocks.retrieve(self.test_clock, options={"max_network_retries": 0})
        return datetime.fromtimestamp(int(data["frozen_time"]), tz=timezone.utc)

    def create_test_clock(self, frozen_time: int, name: str) -> str:
        """A Stripe test clock (test mode only); customers created on it live in its time."""
        data = self._call(self._v1.test_helpers.test_clocks.create, {"frozen_time": frozen_time, "name": name},
                          key=f"test_clock:create:{name}:{frozen_time}")
        return data["id"]

    def advance_test_clock(self, to: datetime, clock_id: Optional[str] = None,
                           wait: timedelta = timedelta(minutes=2), poll: timedelta = timedelta(seconds=1)) -> None:
        """Move a test clock (the gateway's own by default) forward and wait until it is ``ready``: advancing
        only starts the move, and what fell due (renewals, finalizations) runs meanwhile."""
        clock_id = clock_id or self.test_clock
        if not clock_id:
            raise InvalidRequest("no test clock to advance: this gateway was built without one")
        self._call(self._v1.test_helpers.test_clocks.advance, clock_id, {"frozen_time": int(to.timestamp())})
        deadline = datetime.now(timezone.utc) + wait
        interval = poll.total_seconds() if not self.sandbox else min(poll.total_seconds(), 0.05)
        while True:
            status = self._call(self._v1.test_helpers.test_clocks.retrieve, clock_id)["status"]
            if status == "ready":
                return
            if status != "advancing":
                raise GatewayError(f"test clock {clock_id} is {status}")
            if datetime.now(timezone.utc) > deadline:
                raise GatewayUnavailable(f"test clock {clock_id} still advancing after {wait}")
            time.sleep(interval)

    # ------------------------------------------------------------------ plumbing

    def _call(self, method: Callable, *args: Any, key: Optional[str] = None,
              reread: Optional[Callable] = None) -> dict[str, Any]:
        """One request. ``reread``: for a keyed write, the retrieve of the same object; when Stripe replays
        the write (``Idempotent-Replayed``: a retry whose first answer was lost, or a confirmation), its answer
        is the object as the *first* request left it, possibly minutes ago, so the object is read afresh (with
        the same expansions) and that is returned instead: ``billing.sync`` dates answers by when they were
        asked, and a replay would carry an old state under a new date."""
        if self.before_request is not None:
            self.before_request()
        options = {"idempotency_key": key} if key else None
        with translate_errors():
            result = method(*args, options=options) if options else method(*args)
        if reread is not None and _replayed(result):
            object_id, params = args[0], args[1] if len(args) > 1 else {}
            return self._call(reread, object_id, {"expand": params["expand"]} if params.get("expand") else {})
        return result.to_dict()

    def iter_pages(self, fetch: Callable[[Optional[str]], Page], *, max_rate_limit_waits: int = 8) -> Iterator[Page]:
        """Walk a list page by page; on a 429 that outlasted the SDK's retries, wait and resume."""
        cursor: Optional[str] = None
        waits = 0
        while True:
            try:
                page = fetch(cursor)
            except GatewayUnavailable as error:
                if error.http_status != 429 or waits >= max_rate_limit_waits:
                    raise
                waits += 1
                time.sleep(min(2 ** waits, 30))
                continue
            yield page
            if not page.has_more:
                return
            cursor = page.next_cursor


def _replayed(result: Any) -> bool:
    """Whether Stripe answered a keyed request from its store of first answers."""
    response = getattr(result, "last_response", None)
    headers = {name.lower(): value for name, value in (response.headers if response is not None else {}).items()}
    return headers.get("idempotent-replayed") == "true"


# A subscription as an owner's page needs it after a change: with its schedule (a downgrade waiting) and its card.
SubscriptionState = tuple[Subscription, Optional[SubscriptionSchedule], Optional[Card]]
IN_FULL = ("schedule", "default_payment_method")


def _in_full(data: Mapping[str, Any]) -> SubscriptionState:
    """A subscription answered with ``IN_FULL`` expanded."""
    schedule, method = data.get("schedule"), data.get("default_payment_method")
    return (Subscription.from_stripe(data),
            SubscriptionSchedule.from_stripe(schedule) if isinstance(schedule, dict) else None,
            Card.from_stripe(method) if isinstance(method, dict) else None)


def customer_create_key(app_id: int, params: Mapping[str, Any]) -> str:
    """The key of creating an app's customer, named by what is sent: a retry with the same values replays the
    first answer, while one whose values changed meanwhile (billing details saved, an owner's language) is a
    new request instead of a refused reuse of the key (Stripe compares the parameters)."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"customer:create:app:{app_id}:{digest}"


def upgrade_key(subscription_id: str, from_price: str, to_price: str, attempt: str) -> str:
    """The idempotency key of an upgrade (known before the call, so the attempt can be recorded first)."""
    return f"subscription:{subscription_id}:change:{from_price}->{to_price}:attempt:{attempt}"


def pay_invoice_key(invoice_id: str, attempt: str) -> str:
    return f"invoice:{invoice_id}:pay:{attempt}"


def webhook_signature_matches(payload: str, header: str, secret: str) -> bool:
    """Whether ``header`` (``Stripe-Signature``) signs ``payload`` under ``secret``: the SDK's own check.

    No tolerance is passed: the caller (billing/webhooks/signature.py) bounds the timestamp both ways,
    where the SDK only refuses old ones.
    """
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret)
    except stripe.SignatureVerificationError:
        return False
    return True


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn a ``stripe`` exception into the project's own error, keeping code, status and request id."""
    try:
        yield
    except stripe.StripeError as error:
        raise _translate(error) from error


def _translate(error: "stripe.StripeError") -> GatewayError:
    details = getattr(error, "error", None)
    common = {
        "code": getattr(error, "code", None),
        "http_status": error.http_status,
        "request_id": error.request_id,
    }
    message = error.user_message or str(error) or type(error).__name__
    if isinstance(error, stripe.CardError):
        decline = getattr(details, "decline_code", None) if details else None
        return CardDeclined(message, decline_code=decline or common["code"], **common)
    if isinstance(error, stripe.IdempotencyError):
        # A key reused with other parameters: the BillingGatewayIdempotency alert (both the portal's rule and Prometheus's).
        metrics.idempotency_conflict(common["request_id"], message)
        log.error("idempotency-key conflict: %s", message, extra={"event": "gateway.idempotency_conflict",
                                                                 "request_id": common["request_id"]})
        return IdempotencyConflict(message, **common)
    if isinstance(error, (stripe.APIConnectionError, stripe.RateLimitError)):
        return GatewayUnavailable(message, **common)
    if isinstance(error, stripe.InvalidRequestError):
        param = getattr(error, "param", None)
        if error.http_status == 404 or common["code"] == "resource_missing":
            return NotFound(message, param=param, **common)
        return InvalidRequest(message, param=param, **common)
    if (error.http_status or 0) >= 500 or isinstance(error, stripe.APIError):
        return GatewayUnavailable(message, **common)
    return GatewayError(message, **common)

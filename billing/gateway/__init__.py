"""The billing gateway: every Stripe call goes through ``StripeGateway``.

``gateway_from_config`` picks real Stripe or the local sandbox from the settings,
so the rest of the code never knows which one it talks to.
"""
from __future__ import annotations

from typing import Any, Mapping

from billing.gateway.stripe_gateway import (  # noqa: F401 (re-exported)
    StripeGateway,
    SubscriptionState,
    pay_invoice_key,
    upgrade_key,
)
from billing.gateway.types import (  # noqa: F401 (re-exported)
    Card,
    CheckoutSession,
    Customer,
    Invoice,
    InvoiceLine,
    Page,
    PaymentIntent,
    Refund,
    Subscription,
    SubscriptionSchedule,
)


def gateway_from_config(config: Mapping[str, Any]) -> StripeGateway:
    """``STRIPE_TEST_CLOCK`` (test mode, either target): new customers live on that clock and "now" is its time."""
    test_clock = config.get("STRIPE_TEST_CLOCK") or None
    if config["BILLING_GATEWAY_ENABLE_REAL"]:
        return StripeGateway.for_stripe(config["STRIPE_KERNEL_SECRET_KEY"], test_clock=test_clock)
    return StripeGateway.for_sandbox(config["SANDBOX_URL"], config["STRIPE_KERNEL_SECRET_KEY"],
                                     test_clock=test_clock)

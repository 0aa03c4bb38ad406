"""The official Stripe SDK pointed at the sandbox."""
from __future__ import annotations

import stripe

API_KEY = "sk_test_sandbox"


def make_client(url: str) -> stripe.StripeClient:
    return stripe.StripeClient(api_key=API_KEY, base_addresses={"api": url, "files": url, "connect": url},
                               max_network_retries=0)

"""The /v1 API, one module per Stripe resource.

Each module registers its endpoints with :func:`route`; ``server.py`` mounts them
all behind the shared request pipeline (auth, idempotency, transactions).
"""

from __future__ import annotations

import importlib

MODULES = (
    "customers", "catalog", "payment_methods", "setup_intents", "payment_intents", "refunds",
    "checkout_sessions", "subscriptions", "subscription_schedules", "invoices", "events",
    "test_clocks", "webhook_endpoints",
)


def load_all() -> None:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")

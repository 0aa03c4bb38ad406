"""A local, offline double of the Stripe API for the Kernel Billing Portal.

The official ``stripe`` SDK talks to it through ``api_base``/``base_addresses``.
See ``sandbox/README.md`` for what is covered and where it deviates from Stripe.
"""

API_VERSION = "2026-10-28.endive"

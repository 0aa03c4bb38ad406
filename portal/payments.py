"""The portal's handle on the billing gateway, built once per app from its settings."""
from __future__ import annotations

import logging

from flask import Flask, current_app

from billing import clock
from billing.gateway import StripeGateway, gateway_from_config

log = logging.getLogger(__name__)
EXTENSION = "billing_gateway"


def gateway() -> StripeGateway:
    return current_app.extensions[EXTENSION]


def smtp_configured() -> bool:
    """Whether notices are also e-mailed (``SMTP_URL`` set): they are written pending, else kept in the portal."""
    return bool(current_app.config.get("SMTP_URL"))


def init_app(app: Flask) -> None:
    instance = gateway_from_config(app.config)
    app.extensions[EXTENSION] = instance
    log.info("Billing gateway: %s", instance.describe())
    # With a test clock (either target) its time is the time of every billing rule, so moving
    # it runs renewals and dunning on both sides in step; without one both use the system clock.
    if instance.test_clock and app.config.get("BILLING_CLOCK_FOLLOWS_GATEWAY", True):
        clock.use(clock.ExternalClock(instance.now))

"""The portal's handle on the billing gateway, built once per app from its settings."""
from __future__ import annotations

import logging

from flask import Flask, current_app, has_request_context, request

from billing import clock
from billing.gateway import StripeGateway, gateway_from_config
from portal.extensions import db

log = logging.getLogger(__name__)
EXTENSION = "billing_gateway"

# The owner's billing pages and actions (and the JSON API's checkout): none of their requests may call
# Stripe with a database transaction open (billing/actions.py says why and how).
OWNER_BLUEPRINTS = frozenset({"subscriptions", "billing_details", "notices", "invoices", "api"})


class TransactionOpenAcrossStripe(RuntimeError):
    """A programming error: an owner action called Stripe inside a database transaction."""


def refuse_open_transaction() -> None:
    """The gateway's hook: raise (testing) or log (production) when an owner request calls Stripe with a
    transaction open. Threads without a request (jobs, a gateway's worker threads) are not checked here."""
    if not has_request_context() or request.blueprint not in OWNER_BLUEPRINTS:
        return
    if not db.session().in_transaction():
        return
    message = f"{request.endpoint} called Stripe with a database transaction open"
    if current_app.testing:
        raise TransactionOpenAcrossStripe(message)
    log.error(message)


def gateway() -> StripeGateway:
    return current_app.extensions[EXTENSION]


def smtp_configured() -> bool:
    """Whether notices are also e-mailed (``SMTP_URL`` set): they are written pending, else kept in the portal."""
    return bool(current_app.config.get("SMTP_URL"))


def init_app(app: Flask) -> None:
    instance = gateway_from_config(app.config)
    instance.before_request = refuse_open_transaction
    app.extensions[EXTENSION] = instance
    log.info("Billing gateway: %s", instance.describe())
    # With a test clock (either target) its time is the time of every billing rule, so moving
    # it runs renewals and dunning on both sides in step; without one both use the system clock.
    if instance.test_clock and app.config.get("BILLING_CLOCK_FOLLOWS_GATEWAY", True):
        clock.use(clock.ExternalClock(instance.now))

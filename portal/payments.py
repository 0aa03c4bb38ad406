"""The portal's handle on the billing gateway, built once per app from its settings."""
from __future__ import annotations

import contextlib
import logging
from contextvars import ContextVar
from typing import Iterator, Optional

from flask import Flask, current_app, has_app_context, has_request_context, request

from billing import clock
from billing.gateway import StripeGateway, gateway_from_config
from portal.extensions import db

log = logging.getLogger(__name__)
EXTENSION = "billing_gateway"

# The job or worker step under way, when it is one (a request names itself).
_checked_job: ContextVar[Optional[str]] = ContextVar("stripe_calls_checked", default=None)


class TransactionOpenAcrossStripe(RuntimeError):
    """A programming error: a request or a job called Stripe inside a database transaction."""


@contextlib.contextmanager
def checked_job(name: str) -> Iterator[None]:
    """Mark a job (jobs/context.py) or a worker step as checked by ``refuse_open_transaction``, like a request.

    Not every thread with an app context: a test that sets rows up in its own session and then calls
    a billing function directly is not a job, and its open transaction is the test's."""
    token = _checked_job.set(name)
    try:
        yield
    finally:
        _checked_job.reset(token)


def checked_scope() -> Optional[str]:
    """The request's endpoint or the job's name, when the running code is checked; None otherwise."""
    return (request.endpoint or request.path) if has_request_context() else _checked_job.get()


def refuse_open_transaction() -> None:
    """The gateway's hook: raise (testing) or log (production) when a request or a job calls Stripe with
    its database transaction open (billing/actions.py says why no transaction may wait for Stripe).
    The gateway's fetching threads have no app context and no session: nothing to check there."""
    where = checked_scope()
    if where is None or not has_app_context() or not db.session().in_transaction():
        return
    message = f"{where} called Stripe with a database transaction open"
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

"""Fixtures for the sandbox's own tests. The sandbox itself (``sandbox_server``, ``sandbox``) comes from
tests/conftest.py: one process for the whole run, reset before each test."""

from __future__ import annotations

import pytest
import stripe

from tests.helpers.sandbox import make_client


@pytest.fixture
def stripe_client(sandbox) -> stripe.StripeClient:
    """The official SDK pointed at the sandbox, with retries off so every call is visible; ``helpers.customer``
    makes customers on the sandbox's test clock."""
    from . import helpers

    helpers.CLOCK = sandbox.clock_id
    return make_client(sandbox.url)

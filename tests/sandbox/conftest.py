"""Fixtures for the sandbox's own tests: one sandbox process per session, reset per test."""

from __future__ import annotations

import pytest
import stripe

from sandbox.testing import SandboxProcess

API_KEY = "sk_test_sandbox"


@pytest.fixture(scope="session")
def sandbox_server():
    """``python -m sandbox`` on a free port; fast webhook retries so retry tests stay short."""
    with SandboxProcess(webhook_retry_base=0.1, webhook_max_attempts=4, webhook_timeout=2.0) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server):
    """The running sandbox, emptied (state, clock, stats, faults) before the test."""
    sandbox_server.reset()
    return sandbox_server


def make_client(url: str) -> stripe.StripeClient:
    return stripe.StripeClient(api_key=API_KEY, base_addresses={"api": url, "files": url, "connect": url},
                               max_network_retries=0)


@pytest.fixture
def stripe_client(sandbox) -> stripe.StripeClient:
    """The official SDK pointed at the sandbox, with retries off so every call is visible."""
    return make_client(sandbox.url)

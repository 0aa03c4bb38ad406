"""Fixtures for the billing flows: a signed-in owner on the sandbox-wired portal (helpers in tests/helpers/clients.py)."""
from __future__ import annotations

import pytest

from tests.helpers.clients import signed_in_client


@pytest.fixture
def owner_http(billing_app, owner, tenant):
    """The owner of Acme, signed in, on the portal wired to the sandbox."""
    return signed_in_client(billing_app, owner)


@pytest.fixture
def other_http(billing_app, other_owner, other_tenant):
    return signed_in_client(billing_app, other_owner)

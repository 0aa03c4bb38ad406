"""Fixtures for the Billing Gateway API: service keys of two apps, and a client that speaks JSON with a key."""
from __future__ import annotations

import pytest

from billing.models import Role
from tests.helpers.data import make_user
from tests.helpers.gateway_api import Api, issue_key


@pytest.fixture
def gw_app(billing_app):
    return billing_app


@pytest.fixture
def api(gw_app, tenant):
    return Api(gw_app.test_client(), issue_key(gw_app, tenant))


@pytest.fixture
def other_api(gw_app, other_tenant):
    return Api(gw_app.test_client(), issue_key(gw_app, other_tenant))


@pytest.fixture
def second_admin(app):
    return make_user(app, "second@kernel.test", role=Role.SUPERADMIN, name="Second Admin")

"""Fixtures for the webhook tests: the endpoint's secrets, and a tenant whose Stripe ids the payloads use."""
from __future__ import annotations

import pytest
from redis import Redis
from sqlalchemy import select

from billing.models import App, KernelPlan
from portal.extensions import db
from tests.webhooks.helpers import OLD_SECRET, SECRET


@pytest.fixture(autouse=True)
def _webhook_secrets(app_config):
    app_config["STRIPE_KERNEL_WEBHOOK_SECRETS"] = [SECRET, OLD_SECRET]


@pytest.fixture(autouse=True)
def _fresh_rate_limit(redis_url):
    """No rate-limit window left over by an earlier test."""
    connection = Redis.from_url(redis_url)
    keys = list(connection.scan_iter(match="webhooks:rate:*"))
    if keys:
        connection.delete(*keys)
    yield
    connection.close()


@pytest.fixture
def acme(app, tenant):
    """``tenant`` (Acme) billed as Stripe customer ``cus_acme``; the Pro and Enterprise plans priced."""
    with app.app_context():
        db.session.get(App, tenant.id).stripe_customer_id = "cus_acme"
        for plan in db.session.scalars(select(KernelPlan)):
            if plan.code in ("pro", "enterprise"):
                plan.stripe_price_id = {"pro": "price_pro", "enterprise": "price_ent"}[plan.code]
        db.session.commit()
    return tenant

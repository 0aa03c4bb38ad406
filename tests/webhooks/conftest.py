"""Fixtures for the webhook tests: the endpoint's secrets, and a tenant whose Stripe ids the payloads use."""
from __future__ import annotations

import pytest
from redis import Redis
from sqlalchemy import func, select

from billing.models import App, AuditLog, KernelPlan, ProcessedWebhook
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


def count(app, model, *conditions) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def apply_due(app) -> int:
    """Apply every due event as a worker does (RQ_ASYNC on: the endpoint only records); returns how many moved."""
    from jobs.webhooks import Applier

    return Applier(app).drain()


def webhook_row(app, event_id: str) -> ProcessedWebhook | None:
    with app.app_context():
        row = db.session.scalar(select(ProcessedWebhook).where(ProcessedWebhook.event_id == event_id))
        if row is not None:
            db.session.expunge(row)
        return row


def audit_actions(app, correlation_id: str) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AuditLog.action).where(AuditLog.correlation_id == correlation_id)
                                       .order_by(AuditLog.id)))

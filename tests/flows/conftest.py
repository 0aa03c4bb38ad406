"""Fixtures for the billing flows: a signed-in owner on the sandbox-wired portal, and a way to pay."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from billing.models import App, AppSubscription, AuditLog, KernelPlan
from billing.audit import Origin
from tests.conftest import pay_hosted_checkout, short_session, signed_in_client

VISA = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0002"
MASTERCARD = "5555 5555 5555 4444"
USER = Origin(actor="user", correlation_id="req_test")


@pytest.fixture
def owner_http(billing_app, owner, tenant):
    """The owner of Acme, signed in, on the portal wired to the sandbox."""
    return signed_in_client(billing_app, owner)


@pytest.fixture
def other_http(billing_app, other_owner, other_tenant):
    return signed_in_client(billing_app, other_owner)


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def open_checkout(client, app_id: int, plan: str = "pro", attempt: str = "attempt-0001") -> str:
    """Press "Subscribe" on the billing page; returns the hosted Checkout URL the portal redirected to."""
    response = client.post(f"/apps/{app_id}/billing/checkout", data={"plan": plan, "attempt": attempt})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"]


def subscribe(client, app_id: int, plan: str = "pro", card: str = VISA, attempt: str = "attempt-0001"):
    """Check out, pay on the hosted page and come back to /billing/success; returns that answer."""
    paid = pay_hosted_checkout(open_checkout(client, app_id, plan, attempt), card_number=card)
    assert paid.status_code in (302, 303), paid.text
    return client.get(local_path(paid.headers["Location"]))


def subscription_of(app, app_id: int) -> AppSubscription | None:
    with short_session(app) as session:
        row = session.scalar(select(AppSubscription).where(AppSubscription.app_id == app_id)
                             .order_by(AppSubscription.id.desc()))
        if row is not None:
            _ = row.plan, row.scheduled_plan  # loaded while the session is open
        return row


def audit_actions(app, app_id: int) -> list[str]:
    with short_session(app) as session:
        return list(session.scalars(select(AuditLog.action).where(AuditLog.app_id == app_id).order_by(AuditLog.id)))


def count(app, model, *where) -> int:
    with short_session(app) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def set_plan(app, code: str, **values) -> None:
    with short_session(app) as session:
        plan = session.scalar(select(KernelPlan).where(KernelPlan.code == code))
        for name, value in values.items():
            setattr(plan, name, value)


def customer_of(app, app_id: int) -> str | None:
    with short_session(app) as session:
        return session.get(App, app_id).stripe_customer_id

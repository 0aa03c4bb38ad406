"""Rows for tests and look-ups of what a test made, each in one short transaction."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.models import App, AppSubscription, AuditLog, KernelInvoice, KernelPlan, ProcessedWebhook, Role, User
from portal.auth.passwords import hash_password
from portal.extensions import db

PASSWORD = "correct-horse-battery"


@contextmanager
def short_session(app):
    """A session that commits and ends its transaction on exit; objects stay readable after it.

    SQLite allows one writer at a time, so a test must never sit in an open
    transaction while the portal (a live server thread, a worker) needs to write.
    """
    with app.app_context(), Session(db.engine, expire_on_commit=False) as session:
        yield session
        session.commit()


def make_user(app, email: str, role: Role = Role.OWNER, password: str = PASSWORD, name: str = "") -> User:
    with short_session(app) as session:
        user = User(email=email.lower(), role=role, name=name, password_hash=hash_password(password))
        session.add(user)
    return user


def make_app(app, name: str, owner: User | None = None, slug: str | None = None) -> App:
    with short_session(app) as session:
        tenant = App(name=name, slug=slug or name.lower().replace(" ", "-"))
        if owner:
            tenant.owners.append(session.get(User, owner.id))
        session.add(tenant)
    return tenant


def user_by_email(app, email: str) -> User | None:
    with short_session(app) as session:
        return session.scalar(select(User).where(User.email == email))


def count(app, model, *where) -> int:
    """How many rows of ``model`` match ``where``."""
    with short_session(app) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def audit_actions(app, app_id: int) -> list[str]:
    """The audit actions recorded for one tenant, oldest first."""
    with short_session(app) as session:
        return list(session.scalars(select(AuditLog.action).where(AuditLog.app_id == app_id).order_by(AuditLog.id)))


def audit_actions_of_event(app, event_id: str) -> list[str]:
    """The audit actions one Stripe event caused (its id is their correlation id), oldest first."""
    with short_session(app) as session:
        return list(session.scalars(select(AuditLog.action).where(AuditLog.correlation_id == event_id)
                                    .order_by(AuditLog.id)))


def set_plan(app, code: str, **values) -> None:
    with short_session(app) as session:
        plan = session.scalar(select(KernelPlan).where(KernelPlan.code == code))
        for name, value in values.items():
            setattr(plan, name, value)


def subscription_of(app, app_id: int) -> AppSubscription | None:
    with short_session(app) as session:
        row = session.scalar(select(AppSubscription).where(AppSubscription.app_id == app_id)
                             .order_by(AppSubscription.id.desc()))
        if row is not None:
            _ = row.plan, row.scheduled_plan  # loaded while the session is open
        return row


def customer_of(app, app_id: int) -> str | None:
    with short_session(app) as session:
        return session.get(App, app_id).stripe_customer_id


def invoice_row(app, stripe_invoice_id: str) -> KernelInvoice:
    with short_session(app) as session:
        return session.scalar(select(KernelInvoice).where(KernelInvoice.stripe_invoice_id == stripe_invoice_id))


def webhook_row(app, event_id: str) -> ProcessedWebhook | None:
    with short_session(app) as session:
        return session.scalar(select(ProcessedWebhook).where(ProcessedWebhook.event_id == event_id))

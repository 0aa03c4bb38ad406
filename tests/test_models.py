"""Constraints in the schema guard the data, on SQLite and on PostgreSQL."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.db import Base, configure_sqlite
from billing.models import (
    App, AppSubscription, AttemptStatus, KernelInvoice, KernelPaymentAttempt, KernelPlan, ProcessedWebhook, User,
)
from billing.plans import ensure_plans
from billing.states import IllegalTransition, SubscriptionStatus


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def session(request, tmp_path):
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'models.sqlite3'}")
        configure_sqlite(engine)
    else:
        engine = create_engine(request.getfixturevalue("postgres_url"))
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        yield s
    Base.metadata.drop_all(engine)
    engine.dispose()


def _tenant(session, slug="acme"):
    app = App(name=slug.title(), slug=slug)
    session.add(app)
    session.flush()
    return app


def _subscription(session, app, stripe_id="sub_1"):
    plan = ensure_plans(session)[1]
    sub = AppSubscription(app=app, plan=plan, status=SubscriptionStatus.ACTIVE,
                          stripe_customer_id="cus_1", stripe_subscription_id=stripe_id)
    session.add(sub)
    session.flush()
    return sub


def _invoice(session, app, stripe_id="in_1", **overrides):
    fields = dict(app=app, stripe_invoice_id=stripe_id, status="open", amount_due=9900, amount_paid=0,
                  currency="BRL")
    fields.update(overrides)
    invoice = KernelInvoice(**fields)
    session.add(invoice)
    session.flush()
    return invoice


def test_stripe_subscription_ids_are_unique(session):
    app = _tenant(session)
    _subscription(session, app, "sub_same")
    with pytest.raises(IntegrityError):
        _subscription(session, app, "sub_same")


def test_stripe_invoice_ids_are_unique(session):
    app = _tenant(session)
    _invoice(session, app, "in_same")
    with pytest.raises(IntegrityError):
        _invoice(session, app, "in_same")


def test_stripe_customer_ids_are_unique_across_apps(session):
    _tenant(session, "a").stripe_customer_id = "cus_same"
    session.flush()
    _tenant(session, "b").stripe_customer_id = "cus_same"
    with pytest.raises(IntegrityError):
        session.flush()


def test_plan_price_ids_are_unique(session):
    plans = ensure_plans(session)
    plans[1].stripe_price_id = plans[2].stripe_price_id = "price_same"
    with pytest.raises(IntegrityError):
        session.flush()


@pytest.mark.parametrize("column", ["amount_due", "amount_paid", "currency"])
def test_invoice_money_columns_are_not_null(session, column):
    with pytest.raises(IntegrityError):
        _invoice(session, _tenant(session), **{column: None})


def test_invoice_amounts_cannot_be_negative(session):
    with pytest.raises(IntegrityError):
        _invoice(session, _tenant(session), amount_due=-1)


def test_plan_amount_is_required_and_not_negative(session):
    session.add(KernelPlan(code="x", name="X", amount=None, currency="BRL"))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    session.add(KernelPlan(code="y", name="Y", amount=-100, currency="BRL"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_webhook_event_ids_are_unique(session):
    def event():
        return ProcessedWebhook(event_id="evt_1", type="invoice.paid", created=1, livemode=False, payload="{}")

    session.add(event())
    session.flush()
    session.add(event())
    with pytest.raises(IntegrityError):
        session.flush()


def test_one_payment_attempt_per_invoice_and_number(session):
    app = _tenant(session)
    invoice = _invoice(session, app)
    for _ in range(2):
        session.add(KernelPaymentAttempt(app_id=app.id, invoice_id=invoice.id, attempt_number=1,
                                         status=AttemptStatus.FAILED))
    with pytest.raises(IntegrityError):
        session.flush()


def test_user_emails_are_unique_and_lowercase(session):
    session.add(User(email="a@x.test", password_hash="h"))
    session.flush()
    session.add(User(email="a@x.test", password_hash="h"))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    session.add(User(email="Upper@x.test", password_hash="h"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_status_column_refuses_unknown_values(session):
    _subscription(session, _tenant(session))
    with pytest.raises(IntegrityError):
        session.execute(text("UPDATE app_subscriptions SET status = 'bogus'"))


def test_illegal_transition_on_a_row_raises_and_changes_nothing(session):
    sub = _subscription(session, _tenant(session))
    sub.move_to(SubscriptionStatus.CANCELED)
    with pytest.raises(IllegalTransition):
        sub.move_to(SubscriptionStatus.ACTIVE)
    assert sub.status == SubscriptionStatus.CANCELED


def test_datetimes_come_back_timezone_aware_utc(session):
    sub = _subscription(session, _tenant(session))
    sub.current_period_end = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    session.commit()
    session.expire_all()
    loaded = session.scalar(select(AppSubscription))
    assert loaded.current_period_end == datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    assert loaded.current_period_end.tzinfo is not None


def test_naive_datetimes_are_refused(session):
    sub = _subscription(session, _tenant(session))
    sub.current_period_end = datetime(2026, 12, 1)
    with pytest.raises(Exception, match="naive"):
        session.flush()

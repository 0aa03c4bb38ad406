"""How the portal is wired to the gateway: the mode flag, the start-up log, the plans (the boundaries between
modules: tests/test_layers.py)."""
import dataclasses
import logging

from sqlalchemy import select

from billing import plans
from billing.models import KernelPlan
from billing.plans import plan_by_price
from portal import create_app
from portal.extensions import db
from portal.payments import gateway
from tests.helpers.sandbox import make_client


def test_sandbox_mode_points_the_sdk_at_the_sandbox(app_config):
    app = create_app({**app_config, "SANDBOX_URL": "http://127.0.0.1:4999"})
    with app.app_context():
        assert gateway().sandbox and gateway().api_base == "http://127.0.0.1:4999"


def test_real_mode_uses_stripe_and_logs_the_mode_without_the_key(app_config, caplog):
    key = "sk_test_51SecretValueThatMustNotBeLogged"
    caplog.set_level(logging.INFO)
    app = create_app({**app_config, "BILLING_GATEWAY_ENABLE_REAL": True, "STRIPE_KERNEL_SECRET_KEY": key})
    with app.app_context():
        assert not gateway().sandbox and gateway().api_base == "https://api.stripe.com"
    assert "Billing gateway: Stripe test mode" in caplog.text
    assert key not in caplog.text and "sk_test_" not in caplog.text


def test_sync_plans_stores_the_price_ids_and_is_repeatable(app_config, sandbox):
    app = create_app({**app_config, "SANDBOX_URL": sandbox.url})
    with app.app_context():
        db.create_all()
    runner = app.test_cli_runner()
    first = runner.invoke(args=["sync-plans"])
    assert first.exit_code == 0, first.output
    with app.app_context():
        prices = {p.code: p.stripe_price_id for p in db.session.scalars(select(KernelPlan))}
    assert prices["free"] is None and prices["pro"].startswith("price_") and prices["enterprise"].startswith("price_")
    assert runner.invoke(args=["sync-plans"]).exit_code == 0
    with app.app_context():
        assert {p.code: p.stripe_price_id for p in db.session.scalars(select(KernelPlan))} == prices


def test_a_price_change_in_the_catalogue_reaches_the_table_and_stripe(app_config, sandbox, monkeypatch):
    app = create_app({**app_config, "SANDBOX_URL": sandbox.url})
    with app.app_context():
        db.create_all()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["sync-plans"]).exit_code == 0
    with app.app_context():
        old_price = db.session.scalar(select(KernelPlan).where(KernelPlan.code == "pro")).stripe_price_id

    raised = tuple(dataclasses.replace(spec, amount=10900) if spec.code == "pro" else spec for spec in plans.CATALOGUE)
    monkeypatch.setattr(plans, "CATALOGUE", raised)
    for _ in range(2):  # a rerun changes nothing more
        result = runner.invoke(args=["sync-plans"])
        assert result.exit_code == 0, result.output

    with app.app_context():
        pro = db.session.scalar(select(KernelPlan).where(KernelPlan.code == "pro"))
        assert (pro.amount, pro.currency, pro.interval, pro.active) == (10900, "BRL", "month", True)
        assert pro.stripe_price_id not in (None, old_price)
        # The old price stays known, so subscriptions bought at it still map to a plan (and its old amount).
        retired = plan_by_price(db.session, old_price)
        assert (retired.code, retired.amount, retired.active) == ("pro@9900brl-month", 9900, False)
        assert db.session.scalar(select(KernelPlan).where(KernelPlan.code == "enterprise")).active
    stripe = make_client(sandbox.url)
    new = stripe.v1.prices.retrieve(pro.stripe_price_id)
    assert (new.unit_amount, new.currency, new.recurring.interval, new.active) == (10900, "brl", "month", True)
    assert stripe.v1.prices.retrieve(old_price).active is False


def test_now_follows_a_test_clock_by_one_rule_in_both_modes(app_config, sandbox):
    """Sandbox or Stripe alike: the configured test clock's frozen time, else the system clock."""
    from datetime import datetime, timedelta, timezone

    from billing import clock

    app = create_app({**app_config, "SANDBOX_URL": sandbox.url, "BILLING_CLOCK_FOLLOWS_GATEWAY": True})
    with app.app_context():
        assert gateway().test_clock is None
        assert abs(gateway().now() - datetime.now(timezone.utc)) < timedelta(seconds=5)
        assert isinstance(clock.current(), clock.SystemClock)
    later = sandbox.now() + 40 * 86400
    app = create_app({**app_config, "SANDBOX_URL": sandbox.url, "BILLING_CLOCK_FOLLOWS_GATEWAY": True,
                      "STRIPE_TEST_CLOCK": sandbox.clock_id})
    with app.app_context():
        gateway().advance_test_clock(datetime.fromtimestamp(later, tz=timezone.utc))
        clock.refresh()
        assert int(gateway().now().timestamp()) == later == int(clock.now().timestamp())
        customer = gateway().create_customer(app_id=7, email=None, name="On the clock")
        stored = sandbox._call("GET", f"/v1/customers/{customer.id}", api=True)
        assert (stored["test_clock"], stored["created"]) == (sandbox.clock_id, later)
    real = create_app({**app_config, "BILLING_GATEWAY_ENABLE_REAL": True,
                       "STRIPE_KERNEL_SECRET_KEY": "sk_test_x", "STRIPE_TEST_CLOCK": "clock_1"})
    with real.app_context():
        assert gateway().test_clock == "clock_1" and not gateway().sandbox

"""A Stripe that cannot be reached fails fast with the project's own error, and nothing is written."""
import pytest
from sqlalchemy import select

from billing.errors import GatewayUnavailable
from billing.gateway import StripeGateway
from billing.money import Money
from billing.models import KernelPlan
from billing.plans import ensure_plans
from portal import create_app
from portal.extensions import db
from sandbox.testing import SandboxProcess


@pytest.fixture(scope="module")
def stopped_sandbox_url():
    with SandboxProcess() as server:
        url = server.url
    return url


OPERATIONS = {
    "create_customer": lambda g: g.create_customer(app_id=1, email=None, name="Acme"),
    "retrieve_subscription": lambda g: g.retrieve_subscription("sub_x"),
    "list_invoices": lambda g: g.list_invoices(customer="cus_x"),
    "pay_invoice": lambda g: g.pay_invoice("in_x", attempt="1"),
    "ensure_price": lambda g: g.ensure_price(plan_code="pro", name="Pro", amount=Money(9900, "BRL")),
    # "now" asks Stripe only for a test clock's time (without one it is the system clock).
    "now": lambda g: StripeGateway.for_sandbox(g.api_base, test_clock="clock_x").now(),
}


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_every_call_to_a_stopped_sandbox_is_gateway_unavailable(stopped_sandbox_url, operation):
    gateway = StripeGateway.for_sandbox(stopped_sandbox_url)
    with pytest.raises(GatewayUnavailable):
        operation(gateway)


def test_server_errors_after_retries_are_gateway_unavailable(sandbox):
    gateway = StripeGateway.for_sandbox(sandbox.url)
    sandbox.fail(count=10, status=503)
    with pytest.raises(GatewayUnavailable) as error:
        gateway.create_customer(app_id=1, email=None, name="Acme")
    assert error.value.http_status == 503


def test_the_sdk_retries_a_passing_server_error(sandbox):
    gateway = StripeGateway.for_sandbox(sandbox.url)
    sandbox.fail(count=1, status=500)
    assert gateway.create_customer(app_id=1, email=None, name="Acme").id.startswith("cus_")


def test_a_hanging_stripe_times_out_into_gateway_unavailable(sandbox):
    gateway = StripeGateway.for_sandbox(sandbox.url, max_network_retries=0, timeout=(1.0, 0.5))
    sandbox.fail(count=1, delay_seconds=3)
    with pytest.raises(GatewayUnavailable):
        gateway.retrieve_customer("cus_x")


def test_sync_plans_with_the_gateway_down_writes_nothing(app_config, stopped_sandbox_url):
    app = create_app({**app_config, "SANDBOX_URL": stopped_sandbox_url})
    with app.app_context():
        db.create_all()
        ensure_plans(db.session)
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["sync-plans"])
    assert result.exit_code != 0 and "pro" in result.output
    with app.app_context():
        assert all(plan.stripe_price_id is None for plan in db.session.scalars(select(KernelPlan)))

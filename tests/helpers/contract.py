"""One contract suite, two targets: what a contract test needs from a Stripe (the local sandbox, or Stripe test
mode), and the cards and prices it uses."""
from __future__ import annotations

import calendar
import uuid
from datetime import datetime, timedelta, timezone

from billing.gateway import Customer, StripeGateway, Subscription
from billing.money import Money

PRO = Money(9900, "BRL")
ENTERPRISE = Money(49900, "BRL")

# Stripe's test payment methods, by what they do.
CARDS = {
    "visa": "pm_card_visa",
    "declined": "pm_card_chargeDeclined",
    "insufficient_funds": "pm_card_chargeDeclinedInsufficientFunds",
    "fails_on_charge": "pm_card_chargeCustomerFail",
    "authentication_required": "pm_card_authenticationRequired",
}


def next_thirty_day_month_start(after: datetime) -> datetime:
    """The first midnight UTC of a 30-day month after ``after`` (a monthly period of exactly 30 days)."""
    year, month = after.year, after.month
    while True:
        month += 1
        if month == 13:
            year, month = year + 1, 1
        if calendar.monthrange(year, month)[1] == 30:
            return datetime(year, month, 1, tzinfo=timezone.utc)


class Target:
    """What a contract test needs from a Stripe: a gateway, prices, customers and a clock to move."""

    name: str
    gateway: StripeGateway

    def __init__(self):
        self.run = uuid.uuid4().hex[:8]  # keeps idempotency keys of different runs apart
        self.pro_price = self.gateway.ensure_price(plan_code="pro", name="Pro", amount=PRO)
        self.enterprise_price = self.gateway.ensure_price(plan_code="enterprise", name="Enterprise",
                                                          amount=ENTERPRISE)
        self._apps = iter(range(1, 10**6))

    def app_id(self) -> int:
        # Unique per test run, so keys like customer:create:app:<id> never replay an older run's answer.
        return int(self.run, 16) % 10**6 * 1000 + next(self._apps)

    def new_customer(self, at: datetime | None = None) -> Customer:
        """A customer on a new test clock frozen at ``at`` (default: now), as Stripe test mode needs;
        the gateway then follows that clock ("now", advancing), against either target alike."""
        start = at or self.now().replace(microsecond=0)
        self.gateway.test_clock = self.gateway.create_test_clock(int(start.timestamp()),
                                                                 name=f"kernel-contract-{self.run}")
        return self.gateway.create_customer(app_id=self.app_id(), email="owner@acme.test", name="Acme")

    def now(self) -> datetime:
        return self.gateway.now()

    def advance(self, to: datetime) -> None:
        assert self.gateway.test_clock, "create a customer first: the test clock belongs to it"
        self.gateway.advance_test_clock(to)

    def attach(self, customer: Customer, card: str):
        return self.gateway.attach_payment_method(customer.id, CARDS[card])

    def subscribe(self, customer: Customer, price: str, card: str = "visa") -> Subscription:
        payment_method = self.attach(customer, card)
        self.gateway.set_default_payment_method(customer.id, payment_method.payment_method_id)
        return self.gateway.create_subscription(customer_id=customer.id, price_id=price,
                                                app_id=int(customer.metadata["app_id"]),
                                                attempt=f"{self.run}:{customer.id}",
                                                payment_method_id=payment_method.payment_method_id)


class SandboxTarget(Target):
    name = "sandbox"

    def __init__(self, server):
        self.server = server
        self.gateway = StripeGateway.for_sandbox(server.url)
        super().__init__()


class StripeTestModeTarget(Target):
    """Real Stripe in test mode."""

    name = "stripe"

    def __init__(self, api_key: str):
        self.gateway = StripeGateway.for_stripe(api_key)
        super().__init__()


def thirty_day_period_start(target: Target) -> datetime:
    return next_thirty_day_month_start(target.now() + timedelta(days=1))

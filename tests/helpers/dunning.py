"""A tenant on Pro in the sandbox whose renewal fails, moved through the days of dunning."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from billing import clock
from billing.audit import Origin
from billing.dunning import open_dunning
from billing.models import App
from billing.plans import plan_by_code
from billing.sync import sync_invoice, sync_subscription_from_gateway
from portal.extensions import db
from portal.payments import gateway

WEBHOOK = Origin(actor="webhook", correlation_id="evt_test_payment_failed")


@dataclass
class Dunning:
    """A tenant whose renewal failed: ids to look rows up by, and the day-0 moment."""

    app_id: int
    customer_id: str
    subscription_id: str
    invoice_id: str  # Stripe's
    failed_at: datetime


def subscribe_directly(application, app_id: int, card: str = "pm_card_visa", plan: str = "pro") -> tuple[str, str]:
    """Give the app a Stripe customer and a subscription to ``plan`` paid with ``card`` through the gateway (no
    Checkout); sync both into our tables."""
    with application.app_context():
        tenant = db.session.get(App, app_id)
        customer = gateway().create_customer(app_id=app_id, email=tenant.owners[0].email if tenant.owners else None,
                                             name=tenant.name)
        tenant.stripe_customer_id = customer.id
        db.session.commit()
        method = gateway().attach_payment_method(customer.id, card)
        gateway().set_default_payment_method(customer.id, method.payment_method_id)
        remote = gateway().create_subscription(customer_id=customer.id,
                                               price_id=plan_by_code(db.session, plan).stripe_price_id,
                                               app_id=app_id, attempt="test", payment_method_id=method.payment_method_id)
        origin = Origin(actor="test")
        sync_subscription_from_gateway(db.session, gateway(), remote.id, origin=origin)
        sync_invoice(db.session, gateway().retrieve_invoice(remote.latest_invoice),
                     observed_at=int(clock.now().timestamp()), origin=origin)
        db.session.commit()
        return customer.id, remote.id


def fail_renewal(application, app_id: int) -> Dunning:
    """Make the card fail, run the clock past the period end, and record day 0 as the webhook handler will."""
    with application.app_context():
        tenant = db.session.get(App, app_id)
        subscription = tenant.current_subscription
        failing = gateway().attach_payment_method(tenant.stripe_customer_id, "pm_card_chargeCustomerFail")
        gateway().set_default_payment_method(tenant.stripe_customer_id, failing.payment_method_id,
                                             subscription_id=subscription.stripe_subscription_id)
        period_end = subscription.current_period_end
        subscription_id, customer_id = subscription.stripe_subscription_id, tenant.stripe_customer_id
    # The renewal is a draft for an hour, then finalized and charged (as in Stripe).
    advance_to(application, period_end + timedelta(hours=1, minutes=5))
    with application.app_context():
        origin = WEBHOOK
        synced = sync_subscription_from_gateway(db.session, gateway(), subscription_id, origin=origin)
        assert synced.row.status.value == "past_due"
        remote = gateway().retrieve_invoice(synced.remote.latest_invoice)
        assert remote.status == "open"
        invoice = sync_invoice(db.session, remote, observed_at=int(clock.now().timestamp()), origin=origin).row
        failed_at = invoice.created_at
        open_dunning(db.session, invoice, failed_at=failed_at, origin=origin, failure_code="generic_decline")
        db.session.commit()
        return Dunning(app_id, customer_id, subscription_id, remote.id, failed_at)


def advance_to(application, moment: datetime) -> None:
    """Move the sandbox's test clock (and so the portal's) to ``moment``."""
    with application.app_context():
        gateway().advance_test_clock(moment)
    clock.refresh()


def day(dunning: Dunning, number: int, hours: int = 1) -> datetime:
    """``hours`` past midnight of dunning day ``number`` (day 0 is the failure's date), in São Paulo as the
    schedule counts days: adding whole days to the failure's instant lands on the wrong day when the failure
    is late in the São Paulo evening (between 21:00 and midnight there)."""
    start = clock.business_day_start(clock.business_date(dunning.failed_at) + timedelta(days=number))
    return start + timedelta(hours=hours)

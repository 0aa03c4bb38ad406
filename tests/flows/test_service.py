"""billing.subscriptions called directly (no pages): the rules, the proration check and the state machine."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from billing.errors import PlanChangeRefused
from billing.models import App, AppSubscription, AuditLog
from billing.money import Money
from billing.plans import plan_by_code
from billing.states import IllegalTransition, SubscriptionStatus
from billing.subscriptions import (
    Refused,
    StalePreview,
    cancel_at_period_end,
    live_subscription,
    preview_upgrade,
    resume,
    undo_downgrade,
    upgrade,
)
from billing.audit import Origin
from billing.sync import sync_subscription_from_gateway
from portal.extensions import db
from portal.payments import gateway
from tests.flows.test_plan_changes import start_of_a_thirty_day_month
from tests.webhooks.sandbox_events import subscribe as subscribe_without_checkout

USER = Origin(actor="user", correlation_id="req_service_test", actor_user_id=None)


@pytest.fixture
def acme_on_pro(billing_app, tenant):
    """Acme subscribed to Pro with a card on file (no Checkout), mirrored in our table."""
    subscription_id = subscribe_without_checkout(billing_app, tenant.id, "pro")
    with billing_app.app_context():
        sync_subscription_from_gateway(db.session, gateway(), subscription_id, origin=USER)
        db.session.commit()
    return tenant


def test_the_preview_is_the_reference_case_at_a_given_moment(billing_app, tenant, sandbox):
    start_of_a_thirty_day_month(billing_app, sandbox)
    subscription_id = subscribe_without_checkout(billing_app, tenant.id, "pro")
    with billing_app.app_context():
        sync_subscription_from_gateway(db.session, gateway(), subscription_id, origin=USER)
        app = db.session.get(App, tenant.id)
        start = live_subscription(db.session, app).current_period_start
        preview = preview_upgrade(db.session, gateway(), app, plan_by_code(db.session, "enterprise"),
                                  at=start + timedelta(days=15))
    assert (preview.credit, preview.charge) == (Money(-4950, "BRL"), Money(24950, "BRL"))
    assert preview.amount_due == preview.prorated_total == Money(20000, "BRL")
    assert preview.next_amount == Money(49900, "BRL") and preview.next_renewal == start + timedelta(days=30)
    assert preview.proration_date == int((start + timedelta(days=15)).timestamp())


def test_a_preview_date_outside_the_period_is_stale_and_changes_nothing(billing_app, acme_on_pro):
    with billing_app.app_context():
        app = db.session.get(App, acme_on_pro.id)
        row = live_subscription(db.session, app)
        before_the_period = int((row.current_period_start - timedelta(minutes=1)).timestamp())
        with pytest.raises(StalePreview):
            upgrade(db.session, gateway(), app, plan_by_code(db.session, "enterprise"),
                    proration_date=before_the_period, attempt="attempt-stale", origin=USER)
        db.session.rollback()
        assert live_subscription(db.session, app).plan.code == "pro"
        assert gateway().retrieve_subscription(row.stripe_subscription_id).price_id == row.plan.stripe_price_id


def test_refusals_are_plan_change_refusals_with_a_code(billing_app, tenant):
    with billing_app.app_context():
        app = db.session.get(App, tenant.id)
        with pytest.raises(Refused) as refused:
            cancel_at_period_end(db.session, gateway(), app, origin=USER)
        assert refused.value.code == "no_subscription" and isinstance(refused.value, PlanChangeRefused)
        with pytest.raises(Refused):
            undo_downgrade(db.session, gateway(), app, origin=USER)


def test_undo_and_resume_without_anything_pending_change_nothing(billing_app, acme_on_pro):
    with billing_app.app_context():
        app = db.session.get(App, acme_on_pro.id)
        audits = db.session.scalar(select(func.count(AuditLog.id)))
        assert undo_downgrade(db.session, gateway(), app, origin=USER) is False
        assert resume(db.session, gateway(), app, origin=USER) is False
        db.session.commit()
        assert db.session.scalar(select(func.count(AuditLog.id))) == audits


def test_a_canceled_subscription_is_history_and_never_comes_back(billing_app, acme_on_pro):
    """The state machine in billing/states.py: canceled is terminal; the illegal move raises and changes nothing."""
    with billing_app.app_context():
        app = db.session.get(App, acme_on_pro.id)
        row = live_subscription(db.session, app)
        gateway().cancel_now(row.stripe_subscription_id)
        sync_subscription_from_gateway(db.session, gateway(), row.stripe_subscription_id, origin=USER)
        db.session.commit()
        assert row.status == SubscriptionStatus.CANCELED
        assert live_subscription(db.session, app) is None
        with pytest.raises(IllegalTransition):
            row.move_to(SubscriptionStatus.ACTIVE)
        assert row.status == SubscriptionStatus.CANCELED
        with pytest.raises(Refused) as refused:
            resume(db.session, gateway(), app, origin=USER)
        assert refused.value.code == "no_subscription"
        db.session.rollback()
        assert db.session.scalar(select(AppSubscription.status)) == SubscriptionStatus.CANCELED

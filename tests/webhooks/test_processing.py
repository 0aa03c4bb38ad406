"""The processing job: retries with backoff, errors stored, nothing marked processed that was not, event ids in logs."""
import logging

from sqlalchemy import select

from billing import clock
from billing.models import (Alert, App, AppSubscription, KernelCheckoutSession, KernelPlan, ProcessedWebhook,
                            WebhookStatus)
from billing.plans import plan_by_code
from jobs.context import portal_app
from portal.webhooks.apply import process_event as apply_in_context
from portal.extensions import db
from portal.payments import gateway
from tests.helpers.clients import pay_hosted_checkout
from tests.helpers.data import audit_actions_of_event, count, webhook_row
from tests.helpers.webhooks import apply_due
from tests.webhooks.helpers import event, post, subscription


def process_event(event_id):
    """What an admin's replay does without a worker: apply the event now, in an app context."""
    with portal_app().app_context():
        try:
            return apply_in_context(event_id)
        finally:
            db.session.remove()


def test_a_failing_handler_is_retried_its_error_stored_and_nothing_marked_processed(app, client, acme):
    app.config.update(RQ_ASYNC=True, WEBHOOK_RETRY_INTERVALS=[0, 0])  # two retries, due at once
    post(client, event("customer.subscription.created", subscription(sub_id="sub_first"), created=1_800_000_000))
    apply_due(app)
    # A second live subscription for the same app is refused by the database until the first one ends.
    second = event("customer.subscription.created", subscription(sub_id="sub_second"), created=1_800_000_001)
    post(client, second)
    apply_due(app)

    row = webhook_row(app, second["id"])
    assert row.status == WebhookStatus.FAILED and row.attempts == 3  # the first run and two retries
    assert "IntegrityError" in row.last_error and row.processed_at is None
    assert count(app, AppSubscription, AppSubscription.stripe_subscription_id == "sub_second") == 0
    assert audit_actions_of_event(app, second["id"]) == []  # its partial work was rolled back
    assert count(app, Alert, Alert.dedupe_key == f"webhook_failed:{second['id']}") == 1  # raised after the last
    assert row.next_attempt_at is None  # no retry left: it waits for a replay

    # Stripe then reports the first subscription's end; the failed event goes through when replayed.
    post(client, event("customer.subscription.deleted", subscription(sub_id="sub_first", status="canceled"),
                       created=1_800_000_002))
    apply_due(app)
    process_event(second["id"])
    assert webhook_row(app, second["id"]).status == WebhookStatus.PROCESSED
    assert count(app, Alert, Alert.dedupe_key == f"webhook_failed:{second['id']}", Alert.resolved_at.is_(None)) == 0


def test_a_transient_stripe_outage_is_ridden_out_by_the_retries(billing_app, sandbox, client, tenant):
    clock.use(clock.SystemClock())  # keep the clock's own sandbox reads out of the fault count below
    with billing_app.app_context():
        app_row = db.session.get(App, tenant.id)
        app_row.stripe_customer_id = gateway().create_customer(app_id=tenant.id, email=None, name="Acme").id
        plan = plan_by_code(db.session, "pro")
        remote = gateway().create_subscription_checkout(
            customer_id=app_row.stripe_customer_id, price_id=plan.stripe_price_id, app_id=tenant.id,
            plan_code="pro", success_url="http://portal.test/s", cancel_url="http://portal.test/c", attempt="o1")
        db.session.add(KernelCheckoutSession(app_id=tenant.id, stripe_session_id=remote.id, mode="subscription",
                                             url=remote.url, plan=plan))
        db.session.commit()
    pay_hosted_checkout(remote.url)
    from tests.webhooks.sandbox_events import emitted_events

    completed = emitted_events(sandbox.url, {"checkout.session.completed"})[0]
    billing_app.config.update(RQ_ASYNC=True, WEBHOOK_RETRY_INTERVALS=[0, 0, 0])
    post(client, completed)
    sandbox.fail(3, status=503)  # the first attempt's request and the SDK's own two retries
    apply_due(billing_app)

    row = webhook_row(billing_app, completed["id"])
    assert row.status == WebhookStatus.PROCESSED and row.attempts == 2
    assert "GatewayUnavailable" in row.last_error  # the first attempt's error stays visible
    with billing_app.app_context():
        assert db.session.scalar(select(KernelCheckoutSession.status)).value == "complete"
        assert db.session.scalar(select(AppSubscription.status)).value == "active"


def test_every_log_line_of_the_job_carries_the_event_id(app, client, acme, caplog):
    post(client, event("customer.subscription.updated", subscription(status="past_due"), created=2_000_000_000))
    stale = event("customer.subscription.updated", subscription(status="active"), created=1_900_000_000)
    with caplog.at_level(logging.INFO):
        post(client, stale)
    lines = [r for r in caplog.records if r.name.startswith(("billing.", "jobs."))]
    assert len(lines) >= 2  # the handler's "older" line, the outcome
    assert all(stale["id"] in r.getMessage() and r.correlation_id == stale["id"] for r in lines)
    assert any("older than the state we hold" in r.getMessage() for r in lines)


def test_a_missing_row_or_a_settled_event_is_not_processed_again(app, client, acme):
    assert process_event("evt_never_recorded") is None
    payload = event("customer.subscription.created", subscription(sub_id="sub_settled"))
    post(client, payload)
    assert process_event(payload["id"]) == "processed"  # a second job for it: nothing to do
    assert webhook_row(app, payload["id"]).attempts == 1
    assert audit_actions_of_event(app, payload["id"]) == ["subscription.created"]


def test_an_event_of_the_other_mode_is_ignored_even_when_replayed(app, client, acme):
    payload = event("customer.subscription.created", subscription(sub_id="sub_live"), livemode=True)
    post(client, payload)
    with app.app_context():
        db.session.scalar(select(ProcessedWebhook)).status = WebhookStatus.RECEIVED
        db.session.commit()
    assert process_event(payload["id"]) == "ignored"
    assert count(app, AppSubscription) == 0
    with app.app_context():
        assert db.session.scalar(select(KernelPlan).where(KernelPlan.code == "pro")).stripe_price_id == "price_pro"

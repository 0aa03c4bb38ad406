"""A batch runs without a savepoint per event; anything a rollback must undo makes it run again with savepoints.

Each test puts three events in one batch: a subscription change before and after, and in the middle
an event whose handler (registered here for a type the portal does not handle) writes an audit row
and then asks Stripe something, or fails. Whatever happens in the middle, the other two are applied
exactly once, and the middle one's partial work is never kept twice.
"""
from __future__ import annotations

import pytest

from billing import audit
from billing.models import AppSubscription, WebhookStatus
from billing.webhooks import handlers
from billing.webhooks.handlers import Handled, HandlerContext
from portal.payments import gateway
from tests.helpers.data import audit_actions_of_event as audit_actions, count, webhook_row
from tests.helpers.webhooks import apply_due
from tests.webhooks.helpers import event, post, subscription

TYPE = "customer.updated"  # a real Stripe type without a handler of ours


@pytest.fixture
def middle(app, monkeypatch):
    """Registers the middle event's handler; ``calls`` counts the Stripe calls it made (through the applier)."""
    calls: list[str] = []
    with app.app_context():
        monkeypatch.setattr(gateway(), "probe_customer", lambda customer_id: calls.append(customer_id) or "ok",
                            raising=False)

    def install(handler):
        monkeypatch.setitem(handlers.HANDLERS, TYPE, handler)

    install.calls = calls
    return install


def _audit(ctx: HandlerContext, action: str) -> None:
    audit.record(ctx.session, action=action, object_type="customer", object_id=ctx.event.object_id,
                 after={"seen": True}, origin=ctx.origin)


def _batch(app, client):
    app.config.update(RQ_ASYNC=True, WEBHOOK_RETRY_INTERVALS=[60])
    first = event("customer.subscription.created", subscription(sub_id="sub_one", status="active"),
                  created=1_800_000_000)
    middle = event(TYPE, {"id": "cus_acme", "object": "customer"}, created=1_800_000_001)
    last = event("customer.subscription.updated", subscription(sub_id="sub_one", status="past_due"),
                 created=1_800_000_002)
    for payload in (first, middle, last):
        post(client, payload)
    return first, middle, last


def test_an_event_that_asks_stripe_after_writing_is_applied_once_with_its_batch(app, client, acme, middle):
    def writes_then_asks(ctx: HandlerContext) -> Handled:
        _audit(ctx, "customer.noted")
        ctx.session.flush()
        assert ctx.gateway.probe_customer(ctx.event.object_id) == "ok"
        return Handled.DONE

    middle(writes_then_asks)
    first, mid, last = _batch(app, client)
    apply_due(app)

    for payload in (first, mid, last):
        row = webhook_row(app, payload["id"])
        assert row.status == WebhookStatus.PROCESSED and row.attempts == 1
    assert audit_actions(app, mid["id"]) == ["customer.noted"]  # the rolled-back first run left nothing
    assert middle.calls == ["cus_acme"]  # asked once, outside the transaction
    assert len(audit_actions(app, first["id"])) == len(set(audit_actions(app, first["id"]))) > 0
    with app.app_context():
        assert count(app, AppSubscription, AppSubscription.stripe_subscription_id == "sub_one",
                     AppSubscription.status == "past_due") == 1


def test_an_event_that_asks_stripe_before_writing_is_simply_run_again(app, client, acme, middle):
    def asks_then_writes(ctx: HandlerContext) -> Handled:
        assert ctx.gateway.probe_customer(ctx.event.object_id) == "ok"
        _audit(ctx, "customer.noted")
        return Handled.DONE

    middle(asks_then_writes)
    first, mid, last = _batch(app, client)
    apply_due(app)

    assert [webhook_row(app, p["id"]).status for p in (first, mid, last)] == [WebhookStatus.PROCESSED] * 3
    assert audit_actions(app, mid["id"]) == ["customer.noted"]
    assert middle.calls == ["cus_acme"]


def test_a_failing_event_is_recorded_and_its_batch_applied_once(app, client, acme, middle):
    def writes_then_fails(ctx: HandlerContext) -> Handled:
        _audit(ctx, "customer.noted")
        ctx.session.flush()
        raise RuntimeError("the handler broke")

    middle(writes_then_fails)
    first, mid, last = _batch(app, client)
    apply_due(app)

    row = webhook_row(app, mid["id"])
    assert row.status == WebhookStatus.FAILED and row.attempts == 1 and "the handler broke" in row.last_error
    assert audit_actions(app, mid["id"]) == []  # its partial work rolled back
    for payload in (first, last):
        settled = webhook_row(app, payload["id"])
        assert settled.status == WebhookStatus.PROCESSED and settled.attempts == 1
    assert len(audit_actions(app, last["id"])) == len(set(audit_actions(app, last["id"]))) > 0


def test_an_insert_a_concurrent_writer_made_first_reruns_the_batch_and_is_settled_by_its_savepoint(
        app, client, acme, middle):
    # The batch runs without savepoints, so insert_once takes none either: the twin's row makes the
    # batch fail as a whole, and the run with savepoints finds the twin as insert_once always did.
    from billing.db import insert_once
    from billing.models import PaymentOutcome
    from datetime import datetime, timezone

    def outcome(app_id: int) -> PaymentOutcome:
        return PaymentOutcome(reference="ch_twin", app_id=app_id, stripe_payment_intent_id="pi_twin",
                              outcome="succeeded", amount=100, currency="BRL",
                              occurred_at=datetime(2027, 1, 1, tzinfo=timezone.utc))

    with app.app_context():
        from portal.extensions import db
        db.session.add(outcome(acme.id))  # the twin, committed by "another worker"
        db.session.commit()
    seen: list[bool] = []

    def inserts_the_same(ctx: HandlerContext) -> Handled:
        seen.append(insert_once(ctx.session, outcome(acme.id)))
        _audit(ctx, "customer.noted")
        return Handled.DONE

    middle(inserts_the_same)
    first, mid, last = _batch(app, client)
    apply_due(app)

    assert seen == [True, False]  # first without a savepoint (refused at the flush), then with one
    for payload in (first, mid, last):
        row = webhook_row(app, payload["id"])
        assert row.status == WebhookStatus.PROCESSED and row.attempts == 1
    assert audit_actions(app, mid["id"]) == ["customer.noted"]
    assert count(app, PaymentOutcome, PaymentOutcome.reference == "ch_twin") == 1

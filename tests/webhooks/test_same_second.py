"""Same-second events against the owner's own writes: what the worker asked Stripe before the owner acted is no
answer after it.

Seen in benchmarks (issue #10): the owner cancels (committed); a ``customer.subscription.updated`` event created
in the same second, describing the state before the cancel, was applied by the worker and set
``cancel_at_period_end`` back to false. On a same-second tie the handler asks Stripe; the worker asks between two
short transactions, so its answer could predate the owner's cancel that committed in between.
"""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from billing.audit import Origin
from billing.models import App, AppSubscription, ProcessedWebhook, WebhookStatus
from billing.subscriptions import cancel_at_period_end, resume
from billing.sync import sync_subscription_from_gateway
from billing.webhooks.prefetch import Answers, Call, Prefetched, StripeNeeded, asked_since
from billing.webhooks.processing import apply_pending
from portal.extensions import db
from portal.payments import gateway
from tests.webhooks.helpers import post
from tests.webhooks.sandbox_events import emitted_events, subscribe

OWNER = Origin(actor="user")


def _owner(app, action, app_id: int) -> None:
    with app.app_context():
        action(db.session, gateway(), db.session.get(App, app_id), origin=OWNER)
        db.session.commit()


def _cancel_flag(app, subscription_id: str) -> bool:
    with app.app_context():
        flag = db.session.scalar(select(AppSubscription.cancel_at_period_end)
                                 .where(AppSubscription.stripe_subscription_id == subscription_id))
        db.session.rollback()
    return flag


def _latest_update(sandbox) -> dict:
    return emitted_events(sandbox.url, {"customer.subscription.updated"})[-1]


@pytest.mark.parametrize("before, meanwhile, ends_canceled", [
    ((cancel_at_period_end, resume), cancel_at_period_end, True),  # a cancel undone by the resume's late event
    ((cancel_at_period_end,), resume, False),  # a resume undone by the cancel's late event
], ids=["cancel", "resume"])
def test_a_same_second_event_asked_before_the_owner_acted_does_not_undo_it(billing_app, client, sandbox, tenant,
                                                                          before, meanwhile, ends_canceled):
    app = billing_app
    subscription_id = subscribe(app, tenant.id)
    with app.app_context():
        sync_subscription_from_gateway(db.session, gateway(), subscription_id, origin=OWNER)
        db.session.commit()
    for action in before:
        _owner(app, action, tenant.id)
    late = _latest_update(sandbox)  # the state before ``meanwhile``, in the same (test-clock) second as all else
    assert late["data"]["object"]["cancel_at_period_end"] is not ends_canceled

    app.config["RQ_ASYNC"] = True  # recorded only: the worker's passes are played below
    assert post(client, late).status_code == 200
    answers: dict = {}
    with app.app_context():
        # The worker's first pass: the event ties with our row, so it stops to ask Stripe, and asks (no
        # transaction open): not canceled.
        first = apply_pending(db.session, gateway(), answers, event_ids=[late["id"]])
        assert late["id"] in first.needs
        for call in first.needs[late["id"]]:
            answers[late["id"]].fetch(gateway(), call)

    _owner(app, meanwhile, tenant.id)  # meanwhile the owner acts, committed
    assert _cancel_flag(app, subscription_id) is ends_canceled

    with app.app_context():
        for _ in range(5):  # the worker's next passes, asking Stripe whatever they need
            done = apply_pending(db.session, gateway(), answers, event_ids=[late["id"]])
            for event_id, calls in done.needs.items():
                for call in calls:
                    answers[event_id].fetch(gateway(), call)
            if done.settled:
                break
        status = db.session.scalar(select(ProcessedWebhook.status)
                                   .where(ProcessedWebhook.event_id == late["id"]))
        db.session.rollback()
    assert status == WebhookStatus.PROCESSED
    assert _cancel_flag(app, subscription_id) is ends_canceled
    assert gateway_flag(app, subscription_id) is ends_canceled


def gateway_flag(app, subscription_id: str) -> bool:
    with app.app_context():
        return gateway().retrieve_subscription(subscription_id).cancel_at_period_end


class _Stripe:
    """Stripe at the network edge: the subscription's cancel flag as it is at each call."""

    livemode = False

    def __init__(self):
        self.canceling = False

    def retrieve_subscription(self, subscription_id: str) -> bool:
        return self.canceling


def test_an_answer_asked_before_the_row_last_changed_is_asked_again():
    stripe, answers = _Stripe(), Answers()
    call = Call.of("retrieve_subscription", "sub_1")
    answers.fetch(stripe, call)  # asked: not canceling
    changed_at = time.time_ns()  # then the owner cancels, and our row takes it
    stripe.canceling = True
    gateway = Prefetched(stripe, answers)
    assert gateway.retrieve_subscription("sub_1") is False  # with no freshness asked for, the kept answer
    with pytest.raises(StripeNeeded) as needed:
        asked_since(gateway, changed_at).retrieve_subscription("sub_1")
    answers.fetch(stripe, needed.value.call)
    assert asked_since(gateway, changed_at).retrieve_subscription("sub_1") is True
    assert len(answers) == 2  # the applier's bound on calls per event counts the second asking too
    assert asked_since(stripe, changed_at) is stripe  # a live gateway asks now: later than any change

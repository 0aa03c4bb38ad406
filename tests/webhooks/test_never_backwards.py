"""Never backwards: an invoice's status, number and amount paid, and a subscription's status, only move forward.

The flip of issue #10: the Checkout redirect stored the first invoice ``paid``, dated by
our clock, which follows the sandbox's a fraction of a second late; the checkout's own
``invoice.created`` event, dated by Stripe's clock a second "later", then wrote
``draft`` over it (number and amount paid lost) until ``invoice.paid`` came. The first
test pins that exact sequence; the property runs a real subscribe / upgrade / renew
history from the sandbox through every interleaving of its deliveries (late,
duplicated, same-second) with the redirect, reconciliation's heal and the dunning job.
The second property puts the owner's cancel and resume among same-second deliveries
and worker passes that ask Stripe at one step and apply at a later one.
"""
from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import pytest
from sqlalchemy import delete, select

from billing.checkout import complete_checkout
from billing.models import (App, AppSubscription, AuditLog, KernelCheckoutSession, KernelInvoice, ProcessedWebhook,
                            WebhookStatus)
from billing.plans import plan_by_code
from billing.reconciliation import heal, reconcile
from billing.states import can_transition
from billing.audit import Origin
from billing.subscriptions import Refused, cancel_at_period_end, resume
from billing.sync import INVOICE_PROGRESS, sync_invoice, sync_subscription_from_gateway
from billing.webhooks.processing import apply_pending
from billing.gateway.types import Invoice
from billing.models import Base, ReconciliationDivergence
from billing.passes import dunning_pass
from portal.webhooks.apply import process_event
from portal.extensions import db
from portal.payments import gateway
from tests.helpers.clients import pay_hosted_checkout
from tests.webhooks.helpers import event, invoice, post
from tests.webhooks.sandbox_events import emitted_events, subscribe


def test_an_invoice_paid_by_the_redirect_is_not_rolled_back_by_its_creation_event(app, client, acme):
    now = 1_790_000_000
    with app.app_context():
        # The redirect's fetch, dated by a clock a second behind Stripe's.
        paid = Invoice.from_stripe(invoice("in_flip", status="paid", amount_paid=9900, number="ACME-0007"))
        sync_invoice(db.session, paid, observed_at=now - 1, origin=Origin(actor="user"))
        db.session.commit()
    created = event("invoice.created", invoice("in_flip", status="draft", amount_paid=0, number=None), created=now)
    assert post(client, created).status_code == 200
    with app.app_context():
        row = db.session.scalar(select(KernelInvoice).where(KernelInvoice.stripe_invoice_id == "in_flip"))
        assert (row.status, row.amount_paid, row.number) == ("paid", 9900, "ACME-0007")
        assert db.session.scalar(select(ProcessedWebhook.status)) == WebhookStatus.PROCESSED
        assert not db.session.scalars(select(AuditLog).where(AuditLog.correlation_id == created["id"])).all()


# ---------------------------------------------------------------- the property

_PORTAL_STATE = [table for table in reversed(Base.metadata.sorted_tables)
                 if table.name not in ("apps", "users", "app_owners", "kernel_plans", "api_tokens")]


@pytest.fixture
def history(billing_app, sandbox, tenant):
    """A real history in the sandbox: subscribe through hosted Checkout, upgrade (charged now), renew."""
    with billing_app.app_context():
        app_row = db.session.get(App, tenant.id)
        customer = gateway().create_customer(app_id=tenant.id, email="owner@acme.test", name="Acme").id
        app_row.stripe_customer_id = customer
        pro, enterprise = plan_by_code(db.session, "pro"), plan_by_code(db.session, "enterprise")
        checkout = gateway().create_subscription_checkout(
            customer_id=customer, price_id=pro.stripe_price_id, app_id=tenant.id, plan_code="pro",
            success_url="http://portal.test/s?session_id={CHECKOUT_SESSION_ID}", cancel_url="http://portal.test/c",
            attempt="a1")
        db.session.commit()
        pay_hosted_checkout(checkout.url)
        subscription_id = gateway().retrieve_checkout_session(checkout.id).subscription
        remote = gateway().retrieve_subscription(subscription_id)
        sandbox.advance(seconds=3 * 86400)
        gateway().change_price_now(remote, enterprise.stripe_price_id, proration_date=sandbox.now(), attempt="u1")
        period_end = gateway().retrieve_subscription(subscription_id).current_period_end
        sandbox.advance(to=int((period_end + timedelta(hours=2)).timestamp()))
        plan_id = pro.id
    events = emitted_events(sandbox.url)
    assert {"invoice.created", "invoice.finalized", "invoice.paid", "customer.subscription.updated",
            "checkout.session.completed"} <= {e["type"] for e in events}
    return {"app_id": tenant.id, "customer": customer, "checkout": checkout, "plan_id": plan_id, "events": events}


def _start_over(app, history) -> None:
    """An empty portal for each example, with the checkout the owner opened."""
    with app.app_context():
        for table in _PORTAL_STATE:
            db.session.execute(delete(table))
        db.session.add(KernelCheckoutSession(app_id=history["app_id"], stripe_session_id=history["checkout"].id,
                                             mode="subscription", url=history["checkout"].url,
                                             plan_id=history["plan_id"]))
        db.session.commit()


def _picture(app) -> tuple[dict, dict]:
    with app.app_context():
        invoices = {row.stripe_invoice_id: (row.status, row.number, row.amount_paid)
                    for row in db.session.scalars(select(KernelInvoice))}
        subscriptions = {row.stripe_subscription_id: row.status for row in db.session.scalars(select(AppSubscription))}
        db.session.rollback()
    return invoices, subscriptions


def _assert_forward(before: tuple[dict, dict], after: tuple[dict, dict], step: str) -> None:
    for invoice_id, (status, number, paid) in before[0].items():
        now_status, now_number, now_paid = after[0][invoice_id]
        assert INVOICE_PROGRESS[now_status] >= INVOICE_PROGRESS[status], f"{invoice_id} {status}->{now_status} ({step})"
        assert now_paid >= paid, f"{invoice_id} amount_paid {paid}->{now_paid} ({step})"
        assert number is None or now_number == number, f"{invoice_id} number {number}->{now_number} ({step})"
    for subscription_id, status in before[1].items():
        now = after[1][subscription_id]
        assert now == status or can_transition(status, now), f"{subscription_id} {status}->{now} ({step})"


def _heal_all(app) -> None:
    with app.app_context():
        reconcile(db.session, gateway(), trigger="test")
        for divergence in db.session.scalars(select(ReconciliationDivergence).where(
                ReconciliationDivergence.healable.is_(True), ReconciliationDivergence.healed_at.is_(None))).all():
            if divergence.healed_at is None:
                heal(db.session, gateway(), divergence, origin=Origin(actor="user"))
        db.session.commit()


@st.composite
def interleavings(draw, count: int):
    """Deliveries of every event in any order, some twice, with the redirect, heals and dunning runs among them."""
    steps: list = list(draw(st.permutations(range(count))))
    for which in draw(st.lists(st.integers(0, count - 1), max_size=5)):
        steps.insert(draw(st.integers(0, len(steps))), which)
    for action in ["redirect", *draw(st.lists(st.sampled_from(["heal", "dunning"]), max_size=2))]:
        steps.insert(draw(st.integers(0, len(steps))), action)
    return steps


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_no_interleaving_moves_anything_backwards(billing_app, client, history, data):
    events = history["events"]
    steps = data.draw(interleavings(len(events)))
    _start_over(billing_app, history)
    picture = _picture(billing_app)
    for step in steps:
        if step == "redirect":
            with billing_app.app_context():
                complete_checkout(db.session, gateway(), history["checkout"].id, origin=Origin(actor="user"),
                                  app_id=history["app_id"])
                db.session.commit()
        elif step == "heal":
            _heal_all(billing_app)
        elif step == "dunning":
            with billing_app.app_context():
                dunning_pass(db.session, gateway(), trigger="test")
        else:
            assert post(client, events[step]).status_code == 200
            step = f"{events[step]['type']} {events[step]['id']}"
        now = _picture(billing_app)
        _assert_forward(picture, now, str(step))
        picture = now

    for _ in range(3):  # what the queue's retries do for an event that failed (a late subscription, say)
        with billing_app.app_context():
            failed = db.session.scalars(select(ProcessedWebhook.event_id).where(
                ProcessedWebhook.status == WebhookStatus.FAILED)).all()
            db.session.rollback()
        for event_id in failed:
            try:
                process_event(event_id)
            except Exception:  # noqa: BLE001 - recorded on the row; the next round retries it
                pass

    with billing_app.app_context():
        for row in db.session.scalars(select(KernelInvoice)):
            truth = gateway().retrieve_invoice(row.stripe_invoice_id)
            assert (row.status, row.amount_paid, row.number) == (truth.status, truth.amount_paid, truth.number)
        for row in db.session.scalars(select(AppSubscription)):
            truth = gateway().retrieve_subscription(row.stripe_subscription_id)
            assert (row.status.value, row.plan.stripe_price_id) == (truth.status, truth.price_id)
        # The audit trail never shows a step back either.
        for entry in db.session.scalars(select(AuditLog).where(AuditLog.object_type == "kernel_invoice")):
            if entry.before and entry.after:
                assert INVOICE_PROGRESS[entry.after["status"]] >= INVOICE_PROGRESS[entry.before["status"]]
                assert entry.after["amount_paid"] >= entry.before["amount_paid"]
        statuses = set(db.session.scalars(select(ProcessedWebhook.status)))
        assert WebhookStatus.FAILED not in statuses and WebhookStatus.RECEIVED not in statuses


# ---------------------------------------------------------------- the owner's cancel and resume among same-second events

class _Worker:
    """A worker's passes over recorded events, played one step at a time: it can ask Stripe for an event and apply
    it only later, with other writers' commits in between, as the real applier does between its transactions."""

    def __init__(self, app):
        self.app = app
        self.answers: dict = {}

    def _pass(self, event_id: str):
        with self.app.app_context():
            done = apply_pending(db.session, gateway(), self.answers, event_ids=[event_id])
            for waiting, calls in done.needs.items():
                for call in calls:  # no transaction open, as the applier asks
                    self.answers[waiting].fetch(gateway(), call)
            status = db.session.scalar(select(ProcessedWebhook.status).where(ProcessedWebhook.event_id == event_id))
            db.session.rollback()
        return status

    def ask(self, event_id: str) -> None:
        """One pass: the event stops for Stripe (a same-second tie) and the worker asks, keeping the answer."""
        self._pass(event_id)

    def apply(self, event_id: str) -> None:
        for _ in range(15):
            if self._pass(event_id) not in (WebhookStatus.RECEIVED, WebhookStatus.FAILED, None):
                return
        raise AssertionError(f"{event_id} was not applied")


def _flags(app, subscription_id: str) -> tuple[bool, bool]:
    """(our row's cancel_at_period_end, Stripe's)."""
    with app.app_context():
        ours = db.session.scalar(select(AppSubscription.cancel_at_period_end)
                                 .where(AppSubscription.stripe_subscription_id == subscription_id))
        db.session.rollback()
        return ours, gateway().retrieve_subscription(subscription_id).cancel_at_period_end


@pytest.fixture
def owned(billing_app, tenant):
    """A live subscription, ours and Stripe's in step; the sandbox's test clock stands still, so every event and
    every write below is of the same second."""
    subscription_id = subscribe(billing_app, tenant.id)
    with billing_app.app_context():
        sync_subscription_from_gateway(db.session, gateway(), subscription_id, origin=Origin(actor="user"))
        db.session.commit()
    billing_app.config["RQ_ASYNC"] = True  # deliveries are recorded; the worker's passes are the test's steps
    return subscription_id


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(plan=st.lists(st.tuples(st.sampled_from(["owner", "deliver", "ask", "apply"]),
                               st.integers(0, 10_000)), min_size=3, max_size=9))
def test_no_interleaving_undoes_the_owner_s_cancel_or_resume(billing_app, client, sandbox, tenant, owned, plan):
    """The owner's cancel and resume, among deliveries of the events they emit (late, duplicated, all in one
    second) and worker passes that ask Stripe at one step and apply at a later one: once the owner's change is
    committed, our row shows it until the next change, like Stripe."""
    with billing_app.app_context():  # each example starts in step with Stripe, whatever the last one left
        sync_subscription_from_gateway(db.session, gateway(), owned, origin=Origin(actor="user"))
        db.session.commit()
    worker = _Worker(billing_app)
    asked: list[str] = []
    steps = []
    earlier = {e["id"] for e in emitted_events(sandbox.url)}  # earlier examples' events, all applied by now
    for kind, pick in plan:  # ``pick`` chooses among what exists at that step (this example's events so far)
        updates = [e for e in emitted_events(sandbox.url, {"customer.subscription.updated"}) if e["id"] not in earlier]
        if kind == "owner" or not updates:  # cancels, or resumes what is canceling
            action = resume if _flags(billing_app, owned)[0] else cancel_at_period_end
            with billing_app.app_context():
                try:
                    action(db.session, gateway(), db.session.get(App, tenant.id), origin=Origin(actor="user"))
                    db.session.commit()
                except Refused:  # resuming after the period's end and the like: nothing changed
                    db.session.rollback()
            steps.append(action.__name__)
        elif kind == "apply" and asked:
            event_id = asked.pop(pick % len(asked))
            worker.apply(event_id)
            steps.append(f"apply {event_id}")
        else:
            late = updates[pick % len(updates)]
            assert post(client, late).status_code == 200  # a second delivery of one is a duplicate: a no-op
            if kind == "ask":
                worker.ask(late["id"])
                asked.append(late["id"])
            else:
                worker.apply(late["id"])
            steps.append(f"{kind} {late['id']} (cancel_at_period_end={late['data']['object']['cancel_at_period_end']})")
        ours, theirs = _flags(billing_app, owned)
        assert ours == theirs, f"after {steps}: ours {ours}, Stripe's {theirs}"
    for event_id in asked:
        worker.apply(event_id)
    ours, theirs = _flags(billing_app, owned)
    assert ours == theirs, f"after {steps} and the rest applied: ours {ours}, Stripe's {theirs}"

"""billing.sync: Stripe state mirrored into our rows, newest first, through the state machine."""
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.db import Base, configure_sqlite
from billing.gateway.types import Card, Invoice, Subscription, SubscriptionSchedule
from billing.models import App, AppSubscription, AuditLog, KernelInvoice
from billing.plans import ensure_plans
from billing.states import IllegalTransition, SubscriptionStatus
from billing.audit import Origin
from billing.sync import Outcome, UnknownPrice, sync_invoice, sync_subscription

START = datetime(2026, 11, 1, tzinfo=timezone.utc)
END = START + timedelta(days=30)
ORIGIN = Origin(actor="webhook", correlation_id="evt_test")


@pytest.fixture
def session(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'sync.sqlite3'}")
    configure_sqlite(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        free, pro, enterprise = ensure_plans(s)
        pro.stripe_price_id, enterprise.stripe_price_id = "price_pro", "price_ent"
        s.add(App(name="Acme", slug="acme", stripe_customer_id="cus_acme"))
        s.commit()
        yield s
    engine.dispose()


def remote_subscription(status="active", price="price_pro", sub_id="sub_1", customer="cus_acme", **extra):
    data = {
        "id": sub_id, "object": "subscription", "customer": customer, "status": status, "currency": "brl",
        "cancel_at_period_end": False, "canceled_at": None, "trial_end": None, "default_payment_method": None,
        "latest_invoice": None, "schedule": None, "metadata": {}, "created": int(START.timestamp()),
        "items": {"data": [{"id": "si_1", "price": {"id": price, "unit_amount": 9900, "currency": "brl"},
                            "current_period_start": int(START.timestamp()),
                            "current_period_end": int(END.timestamp())}]},
    }
    data.update(extra)
    return Subscription.from_stripe(data)


def remote_invoice(status="open", amount_paid=0, invoice_id="in_1", customer="cus_acme"):
    return Invoice.from_stripe({
        "id": invoice_id, "object": "invoice", "customer": customer, "status": status, "number": "ACME-0001",
        "billing_reason": "subscription_cycle", "amount_due": 9900, "amount_paid": amount_paid,
        "amount_remaining": 9900 - amount_paid, "total": 9900, "currency": "brl",
        "period_start": int(START.timestamp()), "period_end": int(END.timestamp()),
        "hosted_invoice_url": "http://sandbox/invoice/in_1", "invoice_pdf": "http://sandbox/invoice/in_1/pdf",
        "attempt_count": 1, "created": int(START.timestamp()),
        "status_transitions": {"paid_at": int(START.timestamp()) + 60 if status == "paid" else None},
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": "sub_1"}},
        "lines": {"data": []},
    })


def test_a_new_subscription_of_our_customer_is_created_with_plan_and_period(session):
    result = sync_subscription(session, remote_subscription(), observed_at=100, origin=ORIGIN)
    assert result.outcome == Outcome.CREATED
    row = result.row
    assert row.app.slug == "acme" and row.plan.code == "pro" and row.status == SubscriptionStatus.ACTIVE
    assert row.current_period_start == START and row.current_period_end == END and row.stripe_watermark == 100
    entry = session.scalar(select(AuditLog))
    assert entry.action == "subscription.created" and entry.correlation_id == "evt_test"
    assert entry.before is None and entry.after["status"] == "active"


def test_a_subscription_of_someone_else_is_not_ours(session):
    result = sync_subscription(session, remote_subscription(customer="cus_other"), observed_at=1, origin=ORIGIN)
    assert result.outcome == Outcome.NOT_OURS
    assert session.scalar(select(func.count(AppSubscription.id))) == 0


def test_newer_state_is_applied_and_audited_with_before_and_after(session):
    sync_subscription(session, remote_subscription(), observed_at=100, origin=ORIGIN)
    result = sync_subscription(session, remote_subscription(status="past_due"), observed_at=200, origin=ORIGIN)
    assert result.outcome == Outcome.UPDATED and result.row.status == SubscriptionStatus.PAST_DUE
    entry = session.scalars(select(AuditLog).order_by(AuditLog.id.desc())).first()
    assert entry.before["status"] == "active" and entry.after["status"] == "past_due"


def test_older_state_never_overwrites_newer(session):
    sync_subscription(session, remote_subscription(status="past_due"), observed_at=200, origin=ORIGIN)
    result = sync_subscription(session, remote_subscription(status="active"), observed_at=100, origin=ORIGIN)
    assert result.outcome == Outcome.STALE and result.row.status == SubscriptionStatus.PAST_DUE
    assert result.row.stripe_watermark == 200


def test_a_tie_is_settled_by_asking_stripe_after_the_row_last_changed(session):
    first = sync_subscription(session, remote_subscription(status="active"), observed_at=100, origin=ORIGIN)
    changed_at = first.row.stripe_synced_ns
    assert changed_at is not None
    asked = []

    def refetch(since):
        asked.append(since)
        return remote_subscription(status="past_due")

    result = sync_subscription(session, remote_subscription(status="active"), observed_at=100, origin=ORIGIN,
                               refetch=refetch)
    # Asked for an answer no older than the row's last change, and stamped anew by the change it made.
    assert asked == [changed_at] and result.row.status == SubscriptionStatus.PAST_DUE
    assert result.row.stripe_synced_ns > changed_at


def test_an_illegal_transition_raises_and_changes_nothing(session):
    sync_subscription(session, remote_subscription(status="canceled"), observed_at=100, origin=ORIGIN)
    with pytest.raises(IllegalTransition):
        sync_subscription(session, remote_subscription(status="active", price="price_ent"), observed_at=200,
                          origin=ORIGIN)
    row = session.scalar(select(AppSubscription))
    assert row.status == SubscriptionStatus.CANCELED and row.plan.code == "pro" and row.stripe_watermark == 100


def test_an_unknown_price_is_refused(session):
    with pytest.raises(UnknownPrice):
        sync_subscription(session, remote_subscription(price="price_made_by_hand"), observed_at=1, origin=ORIGIN)


def test_nothing_changed_writes_no_audit_row(session):
    sync_subscription(session, remote_subscription(), observed_at=100, origin=ORIGIN)
    result = sync_subscription(session, remote_subscription(), observed_at=150, origin=ORIGIN)
    assert result.outcome == Outcome.UNCHANGED
    assert session.scalar(select(func.count(AuditLog.id))) == 1


def test_a_scheduled_downgrade_is_recorded_and_cleared(session):
    sync_subscription(session, remote_subscription(price="price_ent"), observed_at=100, origin=ORIGIN)
    schedule = SubscriptionSchedule.from_stripe({"id": "sub_sched_1", "status": "active", "subscription": "sub_1",
                                                 "phases": [
                                                     {"items": [{"price": "price_ent"}],
                                                      "start_date": int(START.timestamp()),
                                                      "end_date": int(END.timestamp())},
                                                     {"items": [{"price": "price_pro"}],
                                                      "start_date": int(END.timestamp()), "end_date": None}]})
    row = sync_subscription(session, remote_subscription(price="price_ent", schedule="sub_sched_1"),
                            observed_at=200, origin=ORIGIN, schedule=schedule).row
    assert row.scheduled_plan.code == "pro" and row.scheduled_change_at == END
    row = sync_subscription(session, remote_subscription(price="price_ent"), observed_at=300, origin=ORIGIN).row
    assert row.scheduled_plan_id is None and row.stripe_schedule_id is None


def test_card_details_follow_the_default_payment_method(session):
    card = Card("pm_1", "visa", "4242")
    row = sync_subscription(session, remote_subscription(default_payment_method="pm_1"), observed_at=1,
                            origin=ORIGIN, card=card).row
    assert (row.card_brand, row.card_last4) == ("visa", "4242")
    row = sync_subscription(session, remote_subscription(default_payment_method="pm_2"), observed_at=2,
                            origin=ORIGIN).row
    assert row.payment_method_id == "pm_2" and row.card_last4 is None


def test_a_second_live_subscription_for_one_app_is_refused_by_the_database(session):
    sync_subscription(session, remote_subscription(sub_id="sub_1"), observed_at=1, origin=ORIGIN)
    with pytest.raises(IntegrityError):
        sync_subscription(session, remote_subscription(sub_id="sub_2"), observed_at=2, origin=ORIGIN)


def test_a_new_subscription_after_a_canceled_one_is_allowed(session):
    sync_subscription(session, remote_subscription(sub_id="sub_1", status="canceled"), observed_at=1, origin=ORIGIN)
    result = sync_subscription(session, remote_subscription(sub_id="sub_2"), observed_at=2, origin=ORIGIN)
    assert result.outcome == Outcome.CREATED
    assert session.get(App, result.row.app_id).current_subscription.stripe_subscription_id == "sub_2"


def test_invoices_are_mirrored_and_linked_to_their_subscription(session):
    sync_subscription(session, remote_subscription(), observed_at=1, origin=ORIGIN)
    result = sync_invoice(session, remote_invoice(), observed_at=10, origin=ORIGIN)
    assert result.outcome == Outcome.CREATED
    invoice = result.row
    assert invoice.subscription.stripe_subscription_id == "sub_1" and invoice.currency == "BRL"
    assert (invoice.amount_due, invoice.amount_paid, invoice.status) == (9900, 0, "open")
    paid = sync_invoice(session, remote_invoice(status="paid", amount_paid=9900), observed_at=20, origin=ORIGIN).row
    assert paid.status == "paid" and paid.paid_at == START + timedelta(seconds=60)


def test_a_late_open_invoice_event_does_not_unpay_an_invoice(session):
    sync_invoice(session, remote_invoice(status="paid", amount_paid=9900), observed_at=20, origin=ORIGIN)
    result = sync_invoice(session, remote_invoice(status="open"), observed_at=10, origin=ORIGIN)
    assert result.outcome == Outcome.STALE
    assert session.scalar(select(KernelInvoice)).status == "paid"


def test_invoices_of_others_are_not_stored(session):
    assert sync_invoice(session, remote_invoice(customer="cus_other"), observed_at=1, origin=ORIGIN).outcome == \
        Outcome.NOT_OURS
    assert session.scalar(select(func.count(KernelInvoice.id))) == 0


def test_the_audit_of_a_created_subscription_names_its_plan(session):
    sync_subscription(session, remote_subscription(), observed_at=1, origin=ORIGIN)
    entry = session.scalar(select(AuditLog))
    assert entry.after["plan_id"] is not None


def test_an_invoice_period_is_the_period_its_lines_pay_for(session):
    renewal = Invoice.from_stripe({
        "id": "in_renewal", "customer": "cus_acme", "status": "paid", "currency": "brl", "amount_due": 9900,
        "amount_paid": 9900, "period_start": int(START.timestamp()) - 30 * 86400, "period_end": int(START.timestamp()),
        "lines": {"data": [{"amount": 9900, "period": {"start": int(START.timestamp()), "end": int(END.timestamp())},
                            "parent": {"subscription_item_details": {"proration": False}}}]},
    })
    row = sync_invoice(session, renewal, observed_at=1, origin=ORIGIN).row
    assert (row.period_start, row.period_end) == (START, END)


def test_an_invoice_state_further_along_in_the_same_second_is_applied_without_asking_stripe(session):
    sync_invoice(session, remote_invoice(status="open"), observed_at=100, origin=ORIGIN)
    asked = []

    def refetch(since):
        asked.append(True)
        return remote_invoice(status="paid", amount_paid=9900)

    # Finalized and paid in the same second (a renewal): "paid" can only come after "open".
    result = sync_invoice(session, remote_invoice(status="paid", amount_paid=9900), observed_at=100, origin=ORIGIN,
                          refetch=refetch)
    assert not asked and result.row.status == "paid" and result.row.amount_paid == 9900
    # The very state the row holds (another copy of the event) changes nothing: nothing to ask.
    sync_invoice(session, remote_invoice(status="paid", amount_paid=9900), observed_at=100, origin=ORIGIN,
                 refetch=refetch)
    assert not asked
    # The same progress but not the same state in the same second (one we cannot order): Stripe says.
    other = replace(remote_invoice(status="paid", amount_paid=9900), attempt_count=2)
    sync_invoice(session, other, observed_at=100, origin=ORIGIN, refetch=refetch)
    assert asked == [True]
    # An earlier state in the same second is still never applied.
    asked.clear()
    result = sync_invoice(session, remote_invoice(status="open"), observed_at=100, origin=ORIGIN, refetch=refetch)
    assert result.row.status == "paid"


def test_an_invoice_tie_asks_stripe_for_an_answer_newer_than_the_row_s_last_change(session):
    changed_at = sync_invoice(session, remote_invoice(status="open"), observed_at=10, origin=ORIGIN).row.stripe_synced_ns
    asked = []

    def refetch(since):
        asked.append(since)
        return remote_invoice(status="paid", amount_paid=9900)

    unordered = replace(remote_invoice(status="open"), attempt_count=2)  # neither further along nor the row's state
    result = sync_invoice(session, unordered, observed_at=10, origin=ORIGIN, refetch=refetch)
    assert asked == [changed_at] and result.row.status == "paid"


def test_an_owner_s_answer_asked_before_the_row_last_changed_is_not_applied_on_a_same_second_tie(session):
    # An owner's action asks Stripe (cancel at period end) and is answered; before its transaction writes,
    # the worker applies a later state of the same second (the card changed in another tab, the cancel
    # undone). The owner's answer, asked before that change, cannot be ordered against it and is not
    # applied: no step back to the old card.
    sync_subscription(session, remote_subscription(), observed_at=100, origin=ORIGIN)
    asked_ns = time.time_ns()
    changed = sync_subscription(session, remote_subscription(default_payment_method="pm_new"), observed_at=100,
                                origin=ORIGIN)
    assert changed.row.stripe_synced_ns > asked_ns

    canceling = remote_subscription(cancel_at_period_end=True)
    result = sync_subscription(session, canceling, observed_at=100, origin=ORIGIN, asked_ns=asked_ns)
    assert result.outcome == Outcome.STALE and result.row.cancel_at_period_end is False
    assert result.row.payment_method_id == "pm_new"

    # Asked after the row's last change, the same answer is at least as new as what the row holds: applied.
    result = sync_subscription(session, canceling, observed_at=100, origin=ORIGIN, asked_ns=time.time_ns())
    assert result.outcome == Outcome.UPDATED and result.row.cancel_at_period_end is True


def test_an_answer_asked_before_the_row_last_changed_is_asked_again_where_the_caller_can(session):
    sync_subscription(session, remote_subscription(), observed_at=100, origin=ORIGIN)
    asked_ns = time.time_ns()
    changed_at = sync_subscription(session, remote_subscription(cancel_at_period_end=True), observed_at=100,
                                   origin=ORIGIN).row.stripe_synced_ns
    asked = []

    def refetch(since):
        asked.append(since)
        return remote_subscription(cancel_at_period_end=True)

    result = sync_subscription(session, remote_subscription(), observed_at=100, origin=ORIGIN, asked_ns=asked_ns,
                               refetch=refetch)
    assert asked == [changed_at] and result.row.cancel_at_period_end is True

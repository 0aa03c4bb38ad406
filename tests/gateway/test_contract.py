"""The gateway's contract: every operation, each decline card, idempotency and the reference proration.

Runs against the sandbox by default and against Stripe test mode with -m real_gateway.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from billing.errors import CardDeclined, IdempotencyConflict, InvalidRequest, NotFound
from billing.money import Money
from billing.proration import prorate
from tests.helpers.contract import ENTERPRISE, PRO, thirty_day_period_start


def test_create_customer_is_idempotent_per_app(target):
    app_id = target.app_id()
    first = target.gateway.create_customer(app_id=app_id, email="a@acme.test", name="Acme")
    again = target.gateway.create_customer(app_id=app_id, email="a@acme.test", name="Acme")
    assert again.id == first.id
    fetched = target.gateway.retrieve_customer(first.id)
    assert fetched.metadata["app_id"] == str(app_id) and fetched.email == "a@acme.test"


def test_retrieving_a_missing_object_is_not_found(target):
    with pytest.raises(NotFound):
        target.gateway.retrieve_customer("cus_doesnotexist000")
    with pytest.raises(NotFound):
        target.gateway.retrieve_subscription("sub_doesnotexist000")


def test_ensure_price_finds_what_it_created(target):
    again = target.gateway.ensure_price(plan_code="pro", name="Pro", amount=PRO)
    assert again == target.pro_price
    assert target.gateway.ensure_price(plan_code="pro", name="Pro", amount=Money(10900, "BRL")) != again


def test_subscription_checkout_session(target):
    customer = target.new_customer()
    session = target.gateway.create_subscription_checkout(
        customer_id=customer.id, price_id=target.pro_price, app_id=1, plan_code="pro",
        success_url="http://portal.test/billing/success?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://portal.test/billing/cancel", attempt=f"{target.run}:1",
    )
    assert session.mode == "subscription" and session.status == "open" and session.url
    assert target.gateway.retrieve_checkout_session(session.id).metadata == {"app_id": "1", "plan": "pro"}


def test_double_submitted_checkout_opens_one_session(target):
    customer = target.new_customer()
    kwargs = dict(customer_id=customer.id, price_id=target.pro_price, app_id=1, plan_code="pro",
                  success_url="http://portal.test/s", cancel_url="http://portal.test/c", attempt=f"{target.run}:x")
    assert target.gateway.create_subscription_checkout(**kwargs).id == \
        target.gateway.create_subscription_checkout(**kwargs).id


def test_same_key_with_other_parameters_is_an_idempotency_conflict(target):
    customer = target.new_customer()
    kwargs = dict(customer_id=customer.id, app_id=1, plan_code="pro", success_url="http://portal.test/s",
                  cancel_url="http://portal.test/c", attempt=f"{target.run}:y")
    target.gateway.create_subscription_checkout(price_id=target.pro_price, **kwargs)
    with pytest.raises(IdempotencyConflict):
        target.gateway.create_subscription_checkout(price_id=target.pro_price,
                                                    **{**kwargs, "success_url": "http://portal.test/other"})


def test_setup_checkout_session(target):
    customer = target.new_customer()
    session = target.gateway.create_setup_checkout(customer_id=customer.id, app_id=1, currency="BRL",
                                                   success_url="http://portal.test/s",
                                                   cancel_url="http://portal.test/c", attempt=f"{target.run}:s")
    assert session.mode == "setup" and session.status == "open" and session.url


def test_card_details_are_brand_and_last_four_only(target):
    customer = target.new_customer()
    card = target.attach(customer, "visa")
    assert card.brand == "visa" and card.last4 == "4242"
    assert target.gateway.set_default_payment_method(customer.id, card.payment_method_id).last4 == "4242"
    assert target.gateway.retrieve_customer(customer.id).default_payment_method == card.payment_method_id


def test_reference_case_preview_and_charge_are_200_reais(target):
    """Pro R$ 99 -> Enterprise R$ 499 with 15 of 30 days left: R$ 200,00 charged now."""
    customer = target.new_customer(at=thirty_day_period_start(target))
    subscription = target.subscribe(customer, target.pro_price)
    start, end = subscription.current_period_start, subscription.current_period_end
    assert end - start == timedelta(days=30)
    halfway = start + timedelta(days=15)
    target.advance(halfway)
    proration_date = int(halfway.timestamp())

    expected = prorate(PRO, ENTERPRISE, start, end, halfway)
    preview = target.gateway.preview_price_change(subscription, target.enterprise_price, proration_date)
    assert expected.total == Money(20000, "BRL")
    assert preview.amount_due == expected.total.amount == 20000
    assert sorted(line.amount for line in preview.lines if line.proration) == [-4950, 24950]

    updated, invoice = target.gateway.change_price_now(subscription, target.enterprise_price,
                                                       proration_date=proration_date, attempt=f"{target.run}:up")
    assert updated.price_id == target.enterprise_price
    assert updated.current_period_end == end  # the billing cycle does not move
    assert invoice.status == "paid" and invoice.amount_paid == 20000 and invoice.billing_reason == "subscription_update"


def test_double_submitted_upgrade_charges_once(target):
    customer = target.new_customer()
    subscription = target.subscribe(customer, target.pro_price)
    proration_date = int(target.now().timestamp())
    first, invoice = target.gateway.change_price_now(subscription, target.enterprise_price,
                                                     proration_date=proration_date, attempt=f"{target.run}:2x")
    second, again = target.gateway.change_price_now(subscription, target.enterprise_price,
                                                    proration_date=proration_date, attempt=f"{target.run}:2x")
    assert again.id == invoice.id
    updates = [i for i in target.gateway.list_invoices(customer=customer.id) if i.billing_reason == "subscription_update"]
    assert len(updates) == 1


def test_declined_upgrade_changes_nothing(target):
    customer = target.new_customer()
    subscription = target.subscribe(customer, target.pro_price)
    failing = target.attach(customer, "fails_on_charge")
    target.gateway.set_default_payment_method(customer.id, failing.payment_method_id, subscription.id)
    invoices_before = [i.id for i in target.gateway.list_invoices(customer=customer.id)]

    with pytest.raises(CardDeclined):
        target.gateway.change_price_now(subscription, target.enterprise_price,
                                        proration_date=int(target.now().timestamp()), attempt=f"{target.run}:d")
    after = target.gateway.retrieve_subscription(subscription.id)
    assert after.price_id == target.pro_price and after.status == "active"
    assert [i.id for i in target.gateway.list_invoices(customer=customer.id)
            if i.status in ("open", "paid")] == invoices_before


def test_downgrade_is_scheduled_for_the_period_end_and_can_be_released(target):
    customer = target.new_customer()
    subscription = target.subscribe(customer, target.enterprise_price)
    schedule = target.gateway.schedule_price_change(subscription, target.pro_price)
    assert [phase.price_id for phase in schedule.phases] == [target.enterprise_price, target.pro_price]
    assert schedule.phases[1].start == subscription.current_period_end
    assert target.gateway.retrieve_subscription(subscription.id).price_id == target.enterprise_price

    target.gateway.release_schedule(schedule.id)
    released = target.gateway.retrieve_subscription(subscription.id)
    assert released.schedule is None and released.price_id == target.enterprise_price


def test_scheduled_downgrade_applies_when_the_period_ends(target):
    customer = target.new_customer()
    subscription = target.subscribe(customer, target.enterprise_price)
    target.gateway.schedule_price_change(subscription, target.pro_price)
    target.advance(subscription.current_period_end + timedelta(hours=2))
    renewed = target.gateway.retrieve_subscription(subscription.id)
    assert renewed.price_id == target.pro_price
    assert renewed.current_period_start == subscription.current_period_end
    renewal = target.gateway.retrieve_invoice(renewed.latest_invoice)
    assert renewal.amount_paid == PRO.amount and renewal.billing_reason == "subscription_cycle"


def test_cancel_at_period_end_resume_and_end(target):
    customer = target.new_customer()
    subscription = target.subscribe(customer, target.pro_price)
    assert target.gateway.set_cancel_at_period_end(subscription.id, True).cancel_at_period_end is True
    assert target.gateway.set_cancel_at_period_end(subscription.id, False).cancel_at_period_end is False
    target.gateway.set_cancel_at_period_end(subscription.id, True)
    target.advance(subscription.current_period_end + timedelta(hours=2))
    assert target.gateway.retrieve_subscription(subscription.id).status == "canceled"


def test_a_replayed_write_answers_with_the_object_as_it_is_now_not_as_the_first_request_left_it(target):
    # A retry of a keyed write whose first answer was lost: Stripe replays the first answer, which would
    # carry an old state under a new date into our tables (billing.sync); the gateway reads the object afresh.
    customer = target.new_customer()
    subscription = target.subscribe(customer, target.pro_price)
    first = target.gateway.set_cancel_at_period_end_in_full(subscription.id, True, change="claim:1")[0]
    assert first.cancel_at_period_end is True
    target.gateway.set_cancel_at_period_end_in_full(subscription.id, False, change="claim:2")
    again, _schedule, card = target.gateway.set_cancel_at_period_end_in_full(subscription.id, True, change="claim:1")
    assert again.cancel_at_period_end is False and card is not None  # today's state, with the same expansions


def test_cancel_now(target):
    subscription = target.subscribe(target.new_customer(), target.pro_price)
    canceled = target.gateway.cancel_now(subscription.id)
    assert canceled.status == "canceled" and canceled.canceled_at is not None


def test_failed_renewal_then_paying_the_open_invoice(target):
    customer = target.new_customer()
    subscription = target.subscribe(customer, target.pro_price)
    failing = target.attach(customer, "fails_on_charge")
    target.gateway.set_default_payment_method(customer.id, failing.payment_method_id, subscription.id)
    target.advance(subscription.current_period_end + timedelta(hours=2))

    past_due = target.gateway.retrieve_subscription(subscription.id)
    assert past_due.status == "past_due"
    renewal = target.gateway.retrieve_invoice(past_due.latest_invoice)
    assert renewal.status == "open" and renewal.amount_remaining == PRO.amount

    with pytest.raises(CardDeclined):
        target.gateway.pay_invoice(renewal.id, attempt="retry-1")
    good = target.attach(customer, "visa")
    paid = target.gateway.pay_invoice(renewal.id, attempt="retry-2", payment_method_id=good.payment_method_id)
    assert paid.status == "paid" and paid.amount_paid == PRO.amount and paid.paid_at is not None
    assert target.gateway.retrieve_subscription(subscription.id).status == "active"


def test_invoices_list_and_retrieve(target):
    customer = target.new_customer()
    subscription = target.subscribe(customer, target.pro_price)
    page = target.gateway.list_invoices(customer=customer.id)
    assert [invoice.id for invoice in page] == [subscription.latest_invoice]
    invoice = target.gateway.retrieve_invoice(subscription.latest_invoice)
    assert invoice.subscription == subscription.id and invoice.currency == "BRL"
    assert invoice.amount_paid == PRO.amount and invoice.hosted_invoice_url and invoice.number


@pytest.mark.parametrize("card,decline_code", [
    ("declined", "generic_decline"),
    ("insufficient_funds", "insufficient_funds"),
    ("fails_on_charge", "generic_decline"),
    ("authentication_required", "authentication_required"),
])
def test_each_decline_card(target, card, decline_code):
    customer = target.new_customer()
    with pytest.raises(CardDeclined) as declined:
        payment_method = target.attach(customer, card)  # some cards are refused already here
        target.gateway.create_payment_intent(Money(1500, "BRL"), customer_id=customer.id,
                                             payment_method_id=payment_method.payment_method_id,
                                             purpose=f"{target.run}:{card}")
    assert declined.value.decline_code == decline_code


def test_card_that_fails_on_charge_still_attaches(target):
    customer = target.new_customer()
    assert target.attach(customer, "fails_on_charge").last4 == "0341"


def test_payment_intent_manual_capture_partial_and_refund_limits(target):
    customer = target.new_customer()
    card = target.attach(customer, "visa")
    intent = target.gateway.create_payment_intent(Money(10000, "BRL"), customer_id=customer.id,
                                                  payment_method_id=card.payment_method_id,
                                                  purpose=f"{target.run}:hold", manual_capture=True)
    assert intent.status == "requires_capture" and intent.amount_capturable == 10000
    captured = target.gateway.capture_payment_intent(intent.id, Money(6000, "BRL"))
    assert captured.status == "succeeded" and captured.amount_received == 6000

    refund = target.gateway.create_refund(payment_intent_id=intent.id, reference="ticket-1", amount=Money(4000, "BRL"))
    assert refund.amount == 4000 and refund.status == "succeeded"
    with pytest.raises(InvalidRequest):
        target.gateway.create_refund(payment_intent_id=intent.id, reference="ticket-2", amount=Money(2001, "BRL"))
    rest = target.gateway.create_refund(payment_intent_id=intent.id, reference="ticket-3")
    assert rest.amount == 2000


def test_payment_intent_cancel_releases_the_hold(target):
    customer = target.new_customer()
    card = target.attach(customer, "visa")
    intent = target.gateway.create_payment_intent(Money(5000, "BRL"), customer_id=customer.id,
                                                  payment_method_id=card.payment_method_id,
                                                  purpose=f"{target.run}:cancel", manual_capture=True)
    assert target.gateway.cancel_payment_intent(intent.id).status == "canceled"
    assert target.gateway.retrieve_payment_intent(intent.id).amount_received == 0


def test_subscriptions_listed_page_by_page(target):
    customer = target.new_customer()
    created = {target.subscribe(customer, target.pro_price).id}
    found = []
    for page in target.gateway.iter_pages(
            lambda cursor: target.gateway.list_subscriptions(customer=customer.id, starting_after=cursor)):
        found.extend(page)
    assert {s.id for s in found} == created


def test_an_expired_checkout_session_cannot_be_paid(target):
    customer = target.new_customer()
    session = target.gateway.create_subscription_checkout(
        customer_id=customer.id, price_id=target.pro_price, app_id=1, plan_code="pro",
        success_url="http://portal.test/s", cancel_url="http://portal.test/c", attempt=f"{target.run}:expire")
    expired = target.gateway.expire_checkout_session(session.id)
    assert expired.status == "expired" and not expired.is_complete
    assert target.gateway.retrieve_checkout_session(session.id).status == "expired"
    # Expiring carries a key named by the session: a retry (an answer lost) replays "expired" instead of failing.
    assert target.gateway.expire_checkout_session(session.id).status == "expired"


def test_a_downgrade_can_be_scheduled_again_after_it_was_undone(target):
    customer = target.new_customer()
    subscription = target.subscribe(customer, target.enterprise_price)
    first = target.gateway.schedule_price_change(subscription, target.pro_price, attempt=f"{target.run}:1")
    target.gateway.release_schedule(first.id)
    released = target.gateway.retrieve_subscription(subscription.id)
    second = target.gateway.schedule_price_change(released, target.pro_price, attempt=f"{target.run}:2")
    assert second.id != first.id and second.status in ("active", "not_started")
    assert target.gateway.retrieve_subscription(subscription.id).schedule == second.id


# ---------------------------------------------------------------- sandbox-only checks


def test_hosted_checkout_page_starts_the_subscription(sandbox):
    """Drives the sandbox's hosted page the way a browser posts it (the browser test does it for real)."""
    from tests.helpers.contract import SandboxTarget

    target = SandboxTarget(sandbox)
    customer = target.new_customer()
    session = target.gateway.create_subscription_checkout(
        customer_id=customer.id, price_id=target.pro_price, app_id=1, plan_code="pro",
        success_url="http://portal.test/billing/success?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://portal.test/billing/cancel", attempt="hosted")
    form = {"email": "owner@acme.test", "cardNumber": "4242 4242 4242 4242", "cardExpiry": "12 / 34",
            "cardCvc": "123", "billingName": "Ana Owner"}
    response = requests.post(session.url, data=form, allow_redirects=False, timeout=10)
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == f"http://portal.test/billing/success?session_id={session.id}"
    done = target.gateway.retrieve_checkout_session(session.id)
    assert done.is_complete and done.subscription
    assert target.gateway.retrieve_subscription(done.subscription).status == "active"


def test_list_pages_hold_100_objects(sandbox):
    from tests.helpers.contract import SandboxTarget

    target = SandboxTarget(sandbox)
    sandbox.bulk_seed(subscriptions=250, price=target.pro_price)
    sandbox.clear_stats()
    pages = list(target.gateway.iter_pages(lambda cursor: target.gateway.list_subscriptions(starting_after=cursor)))
    assert [len(page.items) for page in pages] == [100, 100, 50]
    assert len({s.id for page in pages for s in page}) == 250


def test_an_invoices_payment_intents_are_listed(target):
    subscription = target.subscribe(target.new_customer(), target.pro_price)
    intents = target.gateway.list_invoice_payment_intents(subscription.latest_invoice)
    assert len(intents) == 1
    paid_by = target.gateway.retrieve_payment_intent(intents[0])
    assert paid_by.status == "succeeded" and paid_by.amount_received == PRO.amount


def test_a_payments_refunds_are_listed(target):
    customer = target.new_customer()
    card = target.attach(customer, "visa")
    intent = target.gateway.create_payment_intent(Money(3000, "BRL"), customer_id=customer.id,
                                                  payment_method_id=card.payment_method_id,
                                                  purpose=f"{target.run}:refunds-listed")
    first = target.gateway.create_refund(payment_intent_id=intent.id, reference="r1", amount=Money(1000, "BRL"))
    second = target.gateway.create_refund(payment_intent_id=intent.id, reference="r2")
    refunds = target.gateway.list_refunds(payment_intent_id=intent.id)
    assert {(r.id, r.amount, r.payment_intent) for r in refunds} == {(first.id, 1000, intent.id),
                                                                    (second.id, 2000, intent.id)}


def test_list_pages_read_as_plain_json_hold_what_retrieving_each_object_gives(target):
    subscription = target.subscribe(target.new_customer(), target.pro_price)
    listed = target.gateway.list_subscriptions(limit=10)
    assert listed.items == [target.gateway.retrieve_subscription(s.id) for s in listed]
    assert subscription.id in {s.id for s in listed}  # newest first
    invoices = target.gateway.list_invoices(limit=10)
    assert invoices.items == [target.gateway.retrieve_invoice(i.id) for i in invoices]
    with pytest.raises(InvalidRequest):
        target.gateway.list_invoices(starting_after="in_does_not_exist")


def test_a_renewal_is_a_draft_before_stripe_finalizes_and_charges_it(target):
    """On a test clock, as in Stripe: the renewal invoice is created as a draft at the period end and
    finalized and charged about an hour later; ``advance`` waits for the clock to be ready each time."""
    customer = target.new_customer()
    subscription = target.subscribe(customer, target.pro_price)
    target.advance(subscription.current_period_end + timedelta(minutes=20))
    assert target.now() == subscription.current_period_end + timedelta(minutes=20)
    renewed = target.gateway.retrieve_subscription(subscription.id)
    draft = target.gateway.retrieve_invoice(renewed.latest_invoice)
    assert (draft.billing_reason, draft.status) == ("subscription_cycle", "draft")
    target.advance(subscription.current_period_end + timedelta(hours=2))
    charged = target.gateway.retrieve_invoice(draft.id)
    assert charged.status == "paid" and charged.amount_paid == PRO.amount

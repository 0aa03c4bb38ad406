"""How many times each plan action waits for Stripe (issue #16, finding 12).

An owner waits for every request a plan action makes to Stripe, one after the other.
A change asks Stripe to expand what the page needs afterwards (the subscription with its
schedule and card, the upgrade's invoice, what a Checkout Session started) into the answer of
the request that makes the change, instead of reading each again; these tests count the
requests the sandbox served, and check that what the expanded answers carry (the card, the
scheduled plan, the invoice) still reaches the page.
"""
from sqlalchemy import select

from billing.models import KernelInvoice
from tests.helpers.clients import MASTERCARD, local_path, open_checkout, pay_hosted_checkout, subscribe
from tests.helpers.data import short_session, subscription_of
from tests.flows.test_plan_changes import preview_form

SUBSCRIPTION = "GET /v1/subscriptions/<sub_id>"


def served(sandbox) -> dict[str, int]:
    return dict(sandbox.stats()["by_endpoint"])


def test_cancel_and_resume_each_wait_for_stripe_once(billing_app, sandbox, owner_http, tenant):
    subscribe(owner_http, tenant.id, "pro")

    sandbox.clear_stats()
    page = owner_http.post(f"/apps/{tenant.id}/billing/cancel", data={"reason": "too_expensive"},
                           follow_redirects=True)
    assert page.status_code == 200
    # The change, its answer carrying the schedule and the card (was: the change, then a read; before that, four).
    assert served(sandbox) == {"POST /v1/subscriptions/<sub_id>": 1}
    row = subscription_of(billing_app, tenant.id)
    assert row.cancel_at_period_end and row.card_last4 == "4242"

    sandbox.clear_stats()
    owner_http.post(f"/apps/{tenant.id}/billing/resume", follow_redirects=True)
    calls = served(sandbox)
    calls.pop("GET /v1/test_helpers/test_clocks/<clock_id>", None)  # the test clock's time, before refusing
    assert calls == {"POST /v1/subscriptions/<sub_id>": 1}
    row = subscription_of(billing_app, tenant.id)
    assert not row.cancel_at_period_end and row.card_last4 == "4242"


def test_a_downgrade_and_its_undo_read_the_subscription_once_each(billing_app, sandbox, owner_http, tenant):
    subscribe(owner_http, tenant.id, "enterprise")
    form = owner_http.get(f"/apps/{tenant.id}/billing/downgrade?plan=pro").get_data(as_text=True)
    attempt = form.split('name="attempt" value="')[1].split('"')[0]

    sandbox.clear_stats()
    owner_http.post(f"/apps/{tenant.id}/billing/downgrade", data={"plan": "pro", "attempt": attempt})
    calls = served(sandbox)
    # The check before the change; the schedule's update answers with the subscription (and its card) expanded.
    assert calls[SUBSCRIPTION] == 1
    assert "GET /v1/subscription_schedules/<schedule_id>" not in calls
    assert "GET /v1/payment_methods/<pm_id>" not in calls
    row = subscription_of(billing_app, tenant.id)
    assert row.scheduled_plan.code == "pro" and row.stripe_schedule_id and row.card_last4 == "4242"

    sandbox.clear_stats()
    owner_http.post(f"/apps/{tenant.id}/billing/downgrade/undo")
    assert served(sandbox) == {"POST /v1/subscription_schedules/<schedule_id>/release": 1, SUBSCRIPTION: 1}
    row = subscription_of(billing_app, tenant.id)
    assert row.scheduled_plan is None and row.stripe_schedule_id is None and row.card_last4 == "4242"


def test_an_upgrade_reads_the_subscription_once_after_the_change(billing_app, sandbox, owner_http, tenant):
    subscribe(owner_http, tenant.id, "pro")
    _, form = preview_form(owner_http, tenant.id)

    sandbox.clear_stats()
    page = owner_http.post(f"/apps/{tenant.id}/billing/upgrade", data=form, follow_redirects=True)
    assert "Your app is now on Enterprise" in page.get_data(as_text=True)
    calls = served(sandbox)
    # One read to check the plan before charging; the change answers with its invoice, schedule and card.
    assert calls[SUBSCRIPTION] == 1
    assert "GET /v1/payment_methods/<pm_id>" not in calls and "GET /v1/invoices/<invoice_id>" not in calls
    assert sum(calls.values()) - calls.get("GET /v1/test_helpers/test_clocks/<clock_id>", 0) == 3
    row = subscription_of(billing_app, tenant.id)
    assert row.card_last4 == "4242" and row.plan.code == "enterprise"
    with short_session(billing_app) as session:
        invoice = session.scalar(select(KernelInvoice).where(KernelInvoice.billing_reason == "subscription_update"))
        assert invoice.status == "paid" and invoice.amount_paid > 0


def test_coming_back_from_checkout_waits_for_stripe_once(billing_app, sandbox, owner_http, tenant):
    url = open_checkout(owner_http, tenant.id, "pro")
    back = pay_hosted_checkout(url)
    sandbox.clear_stats()
    page = owner_http.get(local_path(back.headers["Location"]), follow_redirects=True)
    assert "Thank you! Your app is now on Pro." in page.get_data(as_text=True)
    # The session, with the subscription, its card, schedule and first invoice expanded (was: three in a row).
    assert served(sandbox) == {"GET /v1/checkout/sessions/<session_id>": 1}
    row = subscription_of(billing_app, tenant.id)
    assert row.plan.code == "pro" and row.card_last4 == "4242"
    with short_session(billing_app) as session:
        invoice = session.scalar(select(KernelInvoice).where(KernelInvoice.subscription_id == row.id))
        assert invoice.status == "paid" and invoice.number


def test_a_card_change_waits_for_stripe_three_times_on_the_way_back(billing_app, sandbox, owner_http, tenant):
    subscribe(owner_http, tenant.id, "pro")
    opened = owner_http.post(f"/apps/{tenant.id}/billing/payment-method", data={"attempt": "card-change-0001"})
    back = pay_hosted_checkout(opened.headers["Location"], MASTERCARD)
    sandbox.clear_stats()
    page = owner_http.get(local_path(back.headers["Location"]), follow_redirects=True)
    assert "Your new card is saved" in page.get_data(as_text=True)
    # The session, the customer's default card (answered expanded), the subscription's (answered in full).
    assert served(sandbox) == {"GET /v1/checkout/sessions/<session_id>": 1, "POST /v1/customers/<customer_id>": 1,
                               "POST /v1/subscriptions/<sub_id>": 1}
    assert subscription_of(billing_app, tenant.id).card_last4 == "4444"

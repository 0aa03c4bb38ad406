"""How many times each plan action waits for Stripe (issue #16, finding 12).

An owner waits for every request a plan action makes to Stripe, one after the other.
Bringing a subscription up to date after a change reads it with its schedule and its card
expanded into one answer (``retrieve_subscription_in_full``) instead of three requests in a
row; these tests count the requests the sandbox served, and check that what the expanded
answer carries (the card, the scheduled plan) still reaches the page.
"""
from tests.helpers.clients import subscribe
from tests.helpers.data import subscription_of
from tests.flows.test_plan_changes import preview_form

SUBSCRIPTION = "GET /v1/subscriptions/<sub_id>"


def served(sandbox) -> dict[str, int]:
    return dict(sandbox.stats()["by_endpoint"])


def test_cancel_and_resume_each_wait_for_stripe_twice(billing_app, sandbox, owner_http, tenant):
    subscribe(owner_http, tenant.id, "pro")

    sandbox.clear_stats()
    page = owner_http.post(f"/apps/{tenant.id}/billing/cancel", data={"reason": "too_expensive"},
                           follow_redirects=True)
    assert page.status_code == 200
    # The change, then one read of the subscription with its schedule and card (was: three reads).
    assert served(sandbox) == {"POST /v1/subscriptions/<sub_id>": 1, SUBSCRIPTION: 1}
    row = subscription_of(billing_app, tenant.id)
    assert row.cancel_at_period_end and row.card_last4 == "4242"

    sandbox.clear_stats()
    owner_http.post(f"/apps/{tenant.id}/billing/resume", follow_redirects=True)
    calls = served(sandbox)
    calls.pop("GET /v1/test_helpers/test_clocks/<clock_id>", None)  # the test clock's time, before refusing
    assert calls == {"POST /v1/subscriptions/<sub_id>": 1, SUBSCRIPTION: 1}
    assert not subscription_of(billing_app, tenant.id).cancel_at_period_end


def test_a_downgrade_and_its_undo_read_the_subscription_once_each(billing_app, sandbox, owner_http, tenant):
    subscribe(owner_http, tenant.id, "enterprise")
    form = owner_http.get(f"/apps/{tenant.id}/billing/downgrade?plan=pro").get_data(as_text=True)
    attempt = form.split('name="attempt" value="')[1].split('"')[0]

    sandbox.clear_stats()
    owner_http.post(f"/apps/{tenant.id}/billing/downgrade", data={"plan": "pro", "attempt": attempt})
    calls = served(sandbox)
    # The check before the change and the read after it; the schedule comes expanded, not asked for again.
    assert calls[SUBSCRIPTION] == 2
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
    # One read to check the plan before charging, one after the change; no separate card read.
    assert calls[SUBSCRIPTION] == 2
    assert "GET /v1/payment_methods/<pm_id>" not in calls
    assert subscription_of(billing_app, tenant.id).card_last4 == "4242"

"""Simultaneous requests, on SQLite and PostgreSQL: the row lock lets one upgrade through and stops the other."""
import re
import threading


from billing.models import AuditLog
from tests.helpers.clients import signed_in_client, subscribe
from tests.helpers.data import count, subscription_of
from tests.flows.test_plan_changes import preview_form, stripe_updates


def test_two_tabs_confirming_at_the_same_moment_charge_once(backend, billing_app, owner, tenant):
    tabs = [signed_in_client(billing_app, owner) for _ in range(2)]
    subscribe(tabs[0], tenant.id, "pro")
    forms = [preview_form(tab, tenant.id)[1] for tab in tabs]
    assert forms[0]["attempt"] != forms[1]["attempt"]

    start = threading.Barrier(2)
    answers = [None, None]

    def confirm(index):
        start.wait()
        answers[index] = tabs[index].post(f"/apps/{tenant.id}/billing/upgrade", data=forms[index],
                                          follow_redirects=True).get_data(as_text=True)

    threads = [threading.Thread(target=confirm, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sum("Your app is now on Enterprise" in answer for answer in answers) == 1
    assert sum("The app is already on this plan." in answer for answer in answers) == 1
    assert subscription_of(billing_app, tenant.id).plan.code == "enterprise"
    assert len(stripe_updates(billing_app, tenant.id)) == 1
    assert count(billing_app, AuditLog, AuditLog.action == "subscription.upgraded") == 1


def test_the_superadmin_tenant_list_on_both_databases(backend, billing_app, owner, tenant, other_tenant, superadmin):
    subscribe(signed_in_client(billing_app, owner), tenant.id, "pro")
    admin = signed_in_client(billing_app, superadmin)
    page = admin.get("/admin/").get_data(as_text=True)
    assert re.search(r'id="mrr-total">R\$99\.00<', page)
    for query, expected in (("plan=free", {"bravo"}), ("status=active", {"acme"})):
        listed = admin.get(f"/admin/?{query}").get_data(as_text=True)
        assert set(re.findall(r'<tr data-app="([^"]+)"', listed)) == expected
    assert admin.get(f"/admin/audit?app_id={tenant.id}&action=subscription.").status_code == 200


def _at_once(*calls):
    start = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index):
        start.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_simultaneous_checkouts_leave_one_payable_session(backend, billing_app, owner, tenant):
    """A double click and another tab at the same moment: one session per attempt, only one left open.

    This checks the outcome; whether the requests truly overlap depends on timing, so
    unlike the upgrade test above it cannot prove on its own that the lock is needed.
    """
    from billing.models import CheckoutStatus, KernelCheckoutSession

    tabs = [signed_in_client(billing_app, owner) for _ in range(3)]
    same = {"plan": "pro", "attempt": "double-click-01"}
    other = {"plan": "enterprise", "attempt": "another-tab-02"}
    answers = _at_once(*(lambda tab=tab, form=form: tab.post(f"/apps/{tenant.id}/billing/checkout", data=form)
                         for tab, form in zip(tabs, (same, same, other))))
    assert [answer.status_code for answer in answers] == [303, 303, 303]
    assert answers[0].headers["Location"] == answers[1].headers["Location"]
    assert count(billing_app, KernelCheckoutSession) == 2
    assert count(billing_app, KernelCheckoutSession, KernelCheckoutSession.status == CheckoutStatus.OPEN) == 1


def _stripe_windows(monkeypatch, pause: float = 0.15):
    """Per request thread, when its first and last request to Stripe went out; each request is slowed by
    ``pause`` so that two actions running side by side would overlap."""
    import time

    from billing.gateway import StripeGateway

    windows: dict[int, list[float]] = {}
    real = StripeGateway._call

    def timed(self, method, *args, **options):
        span = windows.setdefault(threading.get_ident(), [])
        span.append(time.monotonic())
        time.sleep(pause)
        try:
            return real(self, method, *args, **options)
        finally:
            span.append(time.monotonic())

    monkeypatch.setattr(StripeGateway, "_call", timed)
    return windows


def test_two_actions_at_the_same_moment_take_turns_on_the_claim(backend, billing_app, owner, tenant, monkeypatch):
    """Cancel in one tab, a card change in another: the claim lets one action call Stripe at a time (as the row
    lock did, without a transaction open), and both go through."""
    from billing.models import CheckoutMode, KernelCheckoutSession, OwnerActionClaim

    tabs = [signed_in_client(billing_app, owner) for _ in range(2)]
    subscribe(tabs[0], tenant.id, "pro")
    windows = _stripe_windows(monkeypatch)
    answers = _at_once(
        lambda: tabs[0].post(f"/apps/{tenant.id}/billing/cancel", follow_redirects=True),
        lambda: tabs[1].post(f"/apps/{tenant.id}/billing/payment-method", data={"attempt": "card-change-01"}))

    spans = sorted((min(times), max(times)) for times in windows.values() if times)
    assert len(spans) == 2 and spans[0][1] <= spans[1][0], spans  # one after the other, never side by side
    assert "Your subscription is canceled." in answers[0].get_data(as_text=True)
    assert answers[1].status_code == 303
    assert subscription_of(billing_app, tenant.id).cancel_at_period_end
    assert count(billing_app, KernelCheckoutSession, KernelCheckoutSession.mode == CheckoutMode.SETUP) == 1
    assert count(billing_app, OwnerActionClaim) == 0


def test_a_claim_left_by_a_dead_request_expires(backend, billing_app, owner_http, tenant):
    """A request that died between its claim and its result (a killed worker) leaves the claim: after the lease
    the next action takes it over, checks our rows again and goes through."""
    from datetime import datetime, timezone

    from billing.actions import LEASE
    from billing.models import OwnerActionClaim
    from tests.helpers.data import short_session

    subscribe(owner_http, tenant.id, "pro")
    with short_session(billing_app) as session:
        session.add(OwnerActionClaim(app_id=tenant.id, action="cancel", token="dead-request",
                                     claimed_at=datetime.now(timezone.utc) - LEASE - LEASE / 4))
    page = owner_http.post(f"/apps/{tenant.id}/billing/cancel", follow_redirects=True).get_data(as_text=True)
    assert "Your subscription is canceled." in page
    assert subscription_of(billing_app, tenant.id).cancel_at_period_end
    assert count(billing_app, OwnerActionClaim) == 0


def test_a_claim_still_held_refuses_after_the_wait_and_changes_nothing(backend, billing_app, owner_http, tenant,
                                                                         sandbox, monkeypatch):
    from datetime import datetime, timezone

    from billing import actions
    from billing.models import OwnerActionClaim
    from tests.helpers.data import short_session

    subscribe(owner_http, tenant.id, "pro")
    monkeypatch.setattr(actions, "WAIT_SECONDS", 0.3)
    with short_session(billing_app) as session:
        session.add(OwnerActionClaim(app_id=tenant.id, action="downgrade", token="another-tab",
                                     claimed_at=datetime.now(timezone.utc)))
    sandbox.clear_stats()
    page = owner_http.post(f"/apps/{tenant.id}/billing/cancel", follow_redirects=True).get_data(as_text=True)
    assert "billing is still in progress. Please wait a moment and try again." in page
    assert not subscription_of(billing_app, tenant.id).cancel_at_period_end
    assert not any(path.startswith("POST") for path in sandbox.stats()["by_endpoint"])
    assert count(billing_app, OwnerActionClaim) == 1  # the other tab's, left alone

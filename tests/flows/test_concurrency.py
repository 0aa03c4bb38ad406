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

"""What the billing pages say matches what holds: an old success URL, the card an upgrade charges, the admin's
empty filters, Stripe's timestamps."""
import json

from billing.models import ProcessedWebhook, WebhookStatus
from tests.helpers.clients import local_path, open_checkout, pay_hosted_checkout, subscribe
from tests.helpers.data import short_session
from tests.flows.test_plan_changes import preview_form


def test_an_old_success_url_says_what_holds_now(billing_app, owner_http, tenant):
    paid = pay_hosted_checkout(open_checkout(owner_http, tenant.id, "pro"))
    success = local_path(paid.headers["Location"])
    assert "Thank you! Your app is now on Pro." in owner_http.get(success, follow_redirects=True).get_data(as_text=True)
    _, form = preview_form(owner_http, tenant.id, "enterprise")
    owner_http.post(f"/apps/{tenant.id}/billing/upgrade", data=form)

    again = owner_http.get(success, follow_redirects=True).get_data(as_text=True)
    assert "Thank you! Your app is now on Pro." not in again
    assert "This checkout was completed earlier. Your app is now on Enterprise." in again


def test_the_upgrade_preview_names_the_card_it_charges(billing_app, owner_http, tenant):
    subscribe(owner_http, tenant.id, "pro")
    html, _ = preview_form(owner_http, tenant.id, "enterprise")
    assert 'id="charged-card"' in html and "Charged to Visa •••• 4242, the card on file." in html


def test_admin_lists_say_when_a_filter_matches_nothing(superadmin_client):
    audit = superadmin_client.get("/admin/audit?action=nothing.like.this").get_data(as_text=True)
    assert "No entries match these filters." in audit and "Nothing recorded yet." not in audit
    # A filter longer than the field allows is cut, not refused.
    assert superadmin_client.get("/admin/audit?action=" + "x" * 5000).status_code == 200


def test_stripe_events_open_on_all_when_none_failed_and_show_stripe_time(app, superadmin_client):
    with short_session(app) as session:
        session.add(ProcessedWebhook(event_id="evt_copy_1", type="invoice.paid", object_id="in_1", created=1796406133,
                                     livemode=False, status=WebhookStatus.PROCESSED, payload=json.dumps({})))
    listing = superadmin_client.get("/admin/events").get_data(as_text=True)
    assert 'data-event="evt_copy_1"' in listing and "No events here" not in listing
    with short_session(app) as session:
        row_id = session.query(ProcessedWebhook.id).filter_by(event_id="evt_copy_1").scalar()
    detail = superadmin_client.get(f"/admin/events/{row_id}").get_data(as_text=True)
    assert "1796406133" not in detail.split('id="payload"')[0]
    assert "12/4/26, 2:42\u202fPM GMT-03:00" in detail or "12/4/26, 2:42 PM GMT-03:00" in detail

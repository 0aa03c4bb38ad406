"""The superadmin's Stripe events pages: failed events, counters, payloads, and the replay button."""
from redis import Redis
from sqlalchemy import select

from billing.models import Alert, AppSubscription, AuditLog, KernelPlan, WebhookStatus
from portal.extensions import db
from tests.helpers.clients import signed_in_client
from tests.helpers.data import audit_actions_of_event, count, webhook_row
from tests.webhooks.helpers import event, post, subscription


def _failed_event(client):
    payload = event("customer.subscription.created", subscription(sub_id="sub_handmade", price="price_handmade"))
    assert post(client, payload).status_code == 200
    return payload


def _row_id(app, event_id: str) -> int:
    return webhook_row(app, event_id).id


def test_failed_events_are_listed_with_their_error_and_the_counters(app, client, acme, superadmin_client):
    failed = _failed_event(client)
    processed = event("customer.subscription.created", subscription(sub_id="sub_fine"))
    post(client, processed)
    client.post("/webhooks/kernel/stripe", data=b"{}")  # unsigned: refused and counted
    page = superadmin_client.get("/admin/events")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert failed["id"] in html and "price_handmade" in html and processed["id"] not in html
    assert 'data-status="failed">1<' in html
    refused = int(Redis.from_url(app.config["REDIS_URL"]).get("webhooks:rejected:missing_signature"))
    assert f'data-reason="missing_signature">{refused}<' in html
    everything = superadmin_client.get("/admin/events?status=all&type=customer.subscription").get_data(as_text=True)
    assert failed["id"] in everything and processed["id"] in everything


def test_an_event_page_shows_its_payload_and_the_changes_it_made(app, client, acme, superadmin_client):
    payload = event("customer.subscription.created", subscription(sub_id="sub_shown"))
    post(client, payload)
    html = superadmin_client.get(f"/admin/events/{_row_id(app, payload['id'])}").get_data(as_text=True)
    assert payload["id"] in html and "sub_shown" in html
    assert "subscription.created" in html  # the audit row it caused
    assert 'id="replay"' not in html  # processed: nothing to replay


def test_an_ignored_event_says_why(app, client, acme, superadmin_client):
    payload = event("customer.subscription.updated", subscription(customer="cus_stranger"))
    post(client, payload)
    html = superadmin_client.get(f"/admin/events/{_row_id(app, payload['id'])}").get_data(as_text=True)
    assert "belongs to none of our apps" in html


def test_replay_processes_a_failed_event_once_its_cause_is_fixed(app, client, acme, superadmin, superadmin_client):
    payload = _failed_event(client)
    row_id = _row_id(app, payload["id"])
    with app.app_context():  # the superadmin adds the hand-made price to the catalogue
        db.session.scalar(select(KernelPlan).where(KernelPlan.code == "enterprise")).stripe_price_id = "price_handmade"
        db.session.commit()

    response = superadmin_client.post(f"/admin/events/{row_id}/replay", follow_redirects=True)
    assert response.status_code == 200 and "Event processed." in response.get_data(as_text=True)
    row = webhook_row(app, payload["id"])
    assert row.status == WebhookStatus.PROCESSED and row.attempts == 2
    with app.app_context():
        assert db.session.scalar(select(AppSubscription.stripe_subscription_id)) == "sub_handmade"
        alert = db.session.scalar(select(Alert).where(Alert.dedupe_key == f"webhook_failed:{payload['id']}"))
        assert alert.resolved_at is not None
        replay = db.session.scalar(select(AuditLog).where(AuditLog.action == "webhook.replay_requested"))
        assert (replay.actor_user_id, replay.correlation_id, replay.before["status"]) == (
            superadmin.id, payload["id"], "failed")
    assert audit_actions_of_event(app, payload["id"]) == ["webhook.replay_requested", "subscription.created"]


def test_a_replay_that_fails_again_says_so(app, client, acme, superadmin_client):
    payload = _failed_event(client)
    response = superadmin_client.post(f"/admin/events/{_row_id(app, payload['id'])}/replay", follow_redirects=True)
    assert "failed again" in response.get_data(as_text=True)
    row = webhook_row(app, payload["id"])
    assert row.status == WebhookStatus.FAILED and row.attempts == 2
    assert count(app, Alert, Alert.kind == "webhook_failed") == 1  # the same alert, not a second one


def test_a_processed_event_is_not_replayed(app, client, acme, superadmin_client):
    payload = event("customer.subscription.created", subscription(sub_id="sub_once"))
    post(client, payload)
    response = superadmin_client.post(f"/admin/events/{_row_id(app, payload['id'])}/replay", follow_redirects=True)
    assert "already processed" in response.get_data(as_text=True)
    assert webhook_row(app, payload["id"]).attempts == 1


def test_owners_cannot_see_or_replay_events(app, client, acme, owner):
    payload = _failed_event(client)
    row_id = _row_id(app, payload["id"])
    owner_client = signed_in_client(app, owner)
    assert owner_client.get("/admin/events").status_code == 404
    assert owner_client.get(f"/admin/events/{row_id}").status_code == 404
    assert owner_client.post(f"/admin/events/{row_id}/replay").status_code == 404
    assert webhook_row(app, payload["id"]).attempts == 1


def test_an_unknown_event_is_a_404(superadmin_client):
    assert superadmin_client.get("/admin/events/999").status_code == 404
    assert superadmin_client.post("/admin/events/999/replay").status_code == 404


def test_the_backlog_shows_how_many_events_wait_and_the_oldest_s_age(app, client, acme, superadmin_client):
    import re
    from datetime import datetime, timedelta, timezone

    from billing.models import ProcessedWebhook
    from tests.helpers.webhooks import apply_due

    app.config["RQ_ASYNC"] = True  # recorded, not applied: no worker runs
    first = event("customer.subscription.created", subscription(sub_id="sub_wait1"))
    second = event("customer.subscription.created", subscription(sub_id="sub_wait2", customer="cus_not_ours"))
    post(client, first), post(client, second)
    with app.app_context():  # the first arrived two minutes ago
        row = db.session.scalar(select(ProcessedWebhook).where(ProcessedWebhook.event_id == first["id"]))
        row.received_at = datetime.now(timezone.utc) - timedelta(minutes=2)
        db.session.commit()
    page = superadmin_client.get("/admin/events").get_data(as_text=True)
    assert re.search(r'data-backlog="count">2<', page)
    age = float(re.search(r'data-backlog="oldest-age">([\d.]+)', page).group(1))
    assert 120 <= age < 180
    apply_due(app)
    page = superadmin_client.get("/admin/events").get_data(as_text=True)
    assert re.search(r'data-backlog="count">0<', page) and re.search(r'data-backlog="oldest-age">—', page)

"""Service keys from the admin page and the CLI: shown once, stored hashed, revocable; owners cannot reach them."""
from __future__ import annotations

import re

from sqlalchemy import select

from billing.models import AuditLog, ServiceKey
from billing.service_keys import authenticate
from portal.extensions import db
from tests.helpers.data import short_session


def test_a_superadmin_makes_a_key_that_is_shown_once(superadmin_client, app, tenant):
    page = superadmin_client.post("/admin/service-keys", data={"app_id": tenant.id, "name": "support tool",
                                                               "scopes": ["authorize", "refund"]})
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    secret = re.search(r'id="new-key-secret">(kgw_[^<]+)<', page.get_data(as_text=True)).group(1)
    with app.app_context():
        key = authenticate(db.session, secret)
        assert key.scopes == ["authorize", "refund"] and key.app_id == tenant.id
        assert secret not in (key.key_hash, key.prefix)
    listing = superadmin_client.get("/admin/service-keys").get_data(as_text=True)
    assert secret not in listing and secret[:12] in listing

    superadmin_client.post(f"/admin/service-keys/{key.id}/revoke")
    with app.app_context():
        assert authenticate(db.session, secret) is None
    with short_session(app) as session:
        actions = session.scalars(select(AuditLog.action).where(AuditLog.object_type == "service_key")).all()
    assert actions == ["service_key.created", "service_key.revoked"]


def test_a_key_needs_a_name_and_an_operation(superadmin_client, app, tenant):
    response = superadmin_client.post("/admin/service-keys", data={"app_id": tenant.id, "name": "x"})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(ServiceKey)) is None


def test_owners_cannot_see_keys_or_refunds(owner_client):
    for path in ("/admin/service-keys", "/admin/refunds"):
        assert owner_client.get(path).status_code == 404
    assert owner_client.post("/admin/service-keys", data={"name": "x", "scopes": ["refund"]}).status_code == 404


def test_cli_creates_lists_and_revokes(runner, app, tenant):
    made = runner.invoke(args=["service-keys", "create", "acme", "--name", "ops", "--scope", "capture"])
    assert made.exit_code == 0, made.output
    secret = made.output.strip().splitlines()[-1]
    assert secret.startswith("kgw_")
    listed = runner.invoke(args=["service-keys", "list"])
    assert "acme" in listed.output and secret not in listed.output and "live" in listed.output
    with app.app_context():
        key_id = authenticate(db.session, secret).id
    assert runner.invoke(args=["service-keys", "revoke", str(key_id)]).exit_code == 0
    assert runner.invoke(args=["service-keys", "revoke", str(key_id)]).exit_code != 0
    assert "revoked" in runner.invoke(args=["service-keys", "list"]).output
    assert runner.invoke(args=["service-keys", "purge-idempotency"]).exit_code == 0

"""Sending the outbox by SMTP when it is configured; keeping notices in the portal when it is not."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from billing.models import App, OutboxMessage
from billing.notifications import notify_owners
from billing.mail import SmtpSettings, send_pending_messages
from jobs.notices import send_pending
from portal.extensions import db
from tests.jobs.smtp_server import SmtpServer


def _notice(app, tenant_id: int, key: str, *, billing_email: str | None = None, smtp: bool = True) -> None:
    with app.app_context():
        tenant = db.session.get(App, tenant_id)
        tenant.billing_email = billing_email
        notify_owners(db.session, tenant, kind="dunning.retry_notice", subject="We will try again / Tentaremos de novo",
                      body="Attempt 1 of 3 on 2026-12-04.\n\nTentativa 1 de 3 em 04/12/2026.", dedupe_key=key,
                      smtp_configured=smtp)
        db.session.commit()


def _statuses(app) -> dict[str, str]:
    with app.app_context():
        return {m.to_email: m.status.value for m in db.session.scalars(select(OutboxMessage))}


def test_pending_notices_are_sent_once_and_refusals_recorded(app, tenant):
    _notice(app, tenant.id, "dunning:in_1:retry:1:notice", billing_email="refuse@acme.test")
    with SmtpServer() as smtp:
        app.config["SMTP_URL"] = smtp.url
        first = send_pending()
        second = send_pending()
    assert first == {"run": first["run"], "processed": 1, "failed": 1}
    assert second == {"run": second["run"], "processed": 0, "failed": 0}
    assert _statuses(app) == {"owner@acme.test": "sent", "refuse@acme.test": "failed"}
    assert len(smtp.received) == 1
    recipients, email = smtp.received[0]
    assert recipients == ["owner@acme.test"]
    assert email["Subject"] == "We will try again / Tentaremos de novo"
    assert email["From"] == app.config["MAIL_FROM"]
    assert "Tentativa 1 de 3" in email.get_payload(decode=True).decode()
    with app.app_context():
        refused = db.session.scalar(select(OutboxMessage).where(OutboxMessage.to_email == "refuse@acme.test"))
        assert "No such user" in refused.error and refused.sent_at is None


def test_an_unreachable_server_leaves_notices_pending(app, tenant):
    _notice(app, tenant.id, "dunning:in_2:failed")
    with SmtpServer() as smtp:
        url = smtp.url  # the port is closed once the server has stopped
    with app.app_context():
        run = send_pending_messages(db.session, url, "billing@kernel.test")
        assert run.status == "failed" and "SMTP unavailable" in run.error
    assert _statuses(app) == {"owner@acme.test": "pending"}


def test_without_smtp_notices_are_kept_in_the_portal(app, tenant, owner_client, superadmin_client):
    _notice(app, tenant.id, "dunning:in_3:failed", smtp=False)
    assert send_pending() is None
    assert _statuses(app) == {"owner@acme.test": "stored"}
    assert "Tentativa 1 de 3" in owner_client.get(f"/apps/{tenant.id}/notices").get_data(as_text=True)
    outbox = superadmin_client.get("/admin/outbox", query_string={"status": "stored"}).get_data(as_text=True)
    assert "owner@acme.test" in outbox and "We will try again" in outbox


def test_another_tenants_notices_stay_hidden(app, tenant, other_tenant, owner_client):
    _notice(app, other_tenant.id, "dunning:in_4:failed", smtp=False)
    assert owner_client.get(f"/apps/{other_tenant.id}/notices").status_code == 404
    assert "Tentativa" not in owner_client.get(f"/apps/{tenant.id}/notices").get_data(as_text=True)


@pytest.mark.parametrize("url,expected", [
    ("smtp://mailer.test", ("mailer.test", 25, False, None, None)),
    ("smtps://user%40kernel:p%3Ass@mailer.test:465", ("mailer.test", 465, True, "user@kernel", "p:ss")),
    ("smtp://u:p@mailer.test:587", ("mailer.test", 587, False, "u", "p")),
])
def test_smtp_url(url, expected):
    settings = SmtpSettings.from_url(url)
    assert (settings.host, settings.port, settings.tls, settings.username, settings.password) == expected


def test_a_malformed_smtp_url_is_refused():
    with pytest.raises(ValueError):
        SmtpSettings.from_url("mailer.test:25")

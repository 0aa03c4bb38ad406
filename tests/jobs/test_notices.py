"""Sending the outbox by SMTP when it is configured; keeping notices in the portal when it is not.

Each e-mail is written from its kind's template in its recipient's language: the language the user
chose in the portal, for a billing address that is nobody's login the owners' language.
"""
from __future__ import annotations

from email.header import decode_header, make_header

import pytest
from sqlalchemy import select

from billing.models import App, OutboxMessage, OutboxStatus, User
from billing.notifications import NoticeKind, notify_owners
from billing.mail import SmtpSettings, send_pending_messages
from jobs.notices import send_pending
from portal.extensions import db
from tests.jobs.smtp_server import SmtpServer

RETRY = {"invoice": "ACME-0002", "amount": 9900, "currency": "BRL", "pay_url": None, "retry_on": "2026-12-04",
         "attempt": 1, "max_attempts": 3}


def _notice(app, tenant_id: int, key: str, *, billing_email: str | None = None, smtp: bool = True) -> None:
    with app.app_context():
        tenant = db.session.get(App, tenant_id)
        tenant.billing_email = billing_email
        notify_owners(db.session, tenant, kind=NoticeKind.DUNNING_RETRY_NOTICE, data=RETRY, dedupe_key=key,
                      smtp_configured=smtp)
        db.session.commit()


def _speaks(app, email: str, locale: str | None) -> None:
    with app.app_context():
        db.session.scalar(select(User).where(User.email == email)).locale = locale
        db.session.commit()


def _statuses(app) -> dict[str, str]:
    with app.app_context():
        return {m.to_email: m.status.value for m in db.session.scalars(select(OutboxMessage))}


def _subject(email) -> str:
    return str(make_header(decode_header(email["Subject"]))).replace("\r\n", "")


def _body(email) -> str:
    return email.get_payload(decode=True).decode()


def test_pending_notices_are_sent_once_and_refusals_recorded(app, tenant):
    _speaks(app, "owner@acme.test", None)
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
    # The owner has never signed in: Portuguese, the portal's default.
    assert _subject(email) == "Nova cobrança no seu cartão em 4 de dez. de 2026"
    assert email["From"] == app.config["MAIL_FROM"]
    assert "(tentativa 1 de 3)" in _body(email) and "R$\xa099,00" in _body(email)
    with app.app_context():
        refused = db.session.scalar(select(OutboxMessage).where(OutboxMessage.to_email == "refuse@acme.test"))
        assert "No such user" in refused.error and refused.sent_at is None


def test_each_email_is_written_in_its_recipients_language(app, tenant):
    _speaks(app, "owner@acme.test", "en")
    _notice(app, tenant.id, "dunning:in_5:retry:1:notice", billing_email="finance@acme.test")
    with SmtpServer() as smtp:
        app.config["SMTP_URL"] = smtp.url
        send_pending()
    mails = {recipients[0]: email for recipients, email in smtp.received}
    assert set(mails) == {"owner@acme.test", "finance@acme.test"}
    for email in mails.values():  # the billing address has no login: it gets the owner's language
        assert _subject(email) == "We will charge your card again on Dec 4, 2026"
        assert "(attempt 1 of 3)" in _body(email) and "R$99.00" in _body(email) and "tentativa" not in _body(email)

    _speaks(app, "owner@acme.test", "pt_BR")
    _notice(app, tenant.id, "dunning:in_6:retry:1:notice")
    with SmtpServer() as smtp:
        app.config["SMTP_URL"] = smtp.url
        send_pending()
    assert [_subject(email) for _, email in smtp.received] == ["Nova cobrança no seu cartão em 4 de dez. de 2026"]


def test_a_notice_written_before_templates_is_sent_as_it_was_written(app, tenant):
    with app.app_context():
        db.session.add(OutboxMessage(app_id=tenant.id, to_email="owner@acme.test", kind="dunning.failed",
                                     subject="Old subject / Assunto antigo", body="Old body", dedupe_key="old:1",
                                     status=OutboxStatus.PENDING))
        db.session.commit()
    with SmtpServer() as smtp:
        app.config["SMTP_URL"] = smtp.url
        send_pending()
    (_, email), = smtp.received
    assert _subject(email) == "Old subject / Assunto antigo" and _body(email).strip() == "Old body"


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
    page = owner_client.get(f"/apps/{tenant.id}/notices", headers={"Accept-Language": "pt-BR"}).get_data(as_text=True)
    assert "tentativa 1 de 3" in page and "attempt" not in page
    english = owner_client.get(f"/apps/{tenant.id}/notices", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "attempt 1 of 3" in english and "tentativa" not in english
    outbox = superadmin_client.get("/admin/outbox", query_string={"status": "stored"}).get_data(as_text=True)
    assert "owner@acme.test" in outbox and "We will charge your card again on" in outbox  # in the reader's language


def test_another_tenants_notices_stay_hidden(app, tenant, other_tenant, owner_client):
    _notice(app, other_tenant.id, "dunning:in_4:failed", smtp=False)
    assert owner_client.get(f"/apps/{other_tenant.id}/notices").status_code == 404
    assert "tentativa" not in owner_client.get(f"/apps/{tenant.id}/notices").get_data(as_text=True)


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

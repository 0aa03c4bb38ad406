"""Notices are recorded as a kind and data and written from templates in the reader's language (issue 16, finding 3)."""
from __future__ import annotations

import pytest

from billing.models import App, OutboxMessage
from billing.notifications import NoticeKind
from portal.extensions import db
from portal.notices.rendering import TEMPLATED, render

SAMPLES = {
    NoticeKind.SUBSCRIBED: {"plan": "pro", "amount": 9900, "currency": "BRL", "invoice": "A-1", "trial_end_at": None,
                            "renews_at": "2027-01-05T03:00:00+00:00"},
    NoticeKind.UPGRADED: {"from_plan": "pro", "plan": "enterprise", "amount": 20000, "currency": "BRL",
                          "invoice": "A-2", "renews_at": "2027-01-05T03:00:00+00:00"},
    NoticeKind.DOWNGRADE_SCHEDULED: {"from_plan": "enterprise", "plan": "pro",
                                     "change_at": "2027-01-05T03:00:00+00:00"},
    NoticeKind.DOWNGRADE_UNDONE: {"plan": "enterprise", "dropped_plan": "pro",
                                  "renews_at": "2027-01-05T03:00:00+00:00"},
    NoticeKind.CANCELED: {"plan": "pro", "ends_at": "2027-01-05T03:00:00+00:00"},
    NoticeKind.RESUMED: {"plan": "pro", "renews_at": "2027-01-05T03:00:00+00:00"},
    NoticeKind.CARD_CHANGED: {"brand": "visa", "last4": "4242"},
    NoticeKind.DUNNING_FAILED: {"invoice": "A-3", "amount": 9900, "currency": "BRL", "pay_url": None,
                                "grace_days": 7, "next_retry_at": "2027-01-08T12:00:00+00:00"},
    NoticeKind.DUNNING_RETRY_NOTICE: {"invoice": "A-3", "amount": 9900, "currency": "BRL",
                                      "pay_url": "https://billing.test/apps/1/pay", "retry_on": "2027-01-08",
                                      "attempt": 1, "max_attempts": 3},
    NoticeKind.DUNNING_CANCELED: {"invoice": "A-3", "amount": 9900, "currency": "BRL", "pay_url": None, "retries": 3,
                                  "app": "Acme Analytics"},
    NoticeKind.DUNNING_RECOVERED: {"invoice": "A-3", "amount": 9900, "currency": "BRL", "pay_url": None},
    NoticeKind.REFUND_EXECUTED: {"amount": 5000, "currency": "BRL", "refund": "re_1"},
}


def test_every_kind_but_the_incident_has_a_template_and_a_sample():
    assert set(SAMPLES) == set(TEMPLATED) == set(NoticeKind) - {NoticeKind.INCIDENT}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_each_kind_reads_in_both_languages(app, tenant, kind):
    with app.app_context():
        message = OutboxMessage(app=db.session.get(App, tenant.id), to_email="owner@acme.test", kind=kind,
                                data=SAMPLES[kind])
        english, portuguese = render(message, "en"), render(message, "pt_BR")
    for subject, body in (english, portuguese):
        assert subject and body and "%(" not in subject + body and "None" not in subject + body
    assert english != portuguese
    if "amount" in SAMPLES[kind]:
        assert "R$" in english[0] + english[1] and ".00" in english[0] + english[1]
        assert ",00" in portuguese[0] + portuguese[1]


def test_dates_and_money_follow_the_reader(app, tenant):
    with app.app_context():
        message = OutboxMessage(app=db.session.get(App, tenant.id), to_email="owner@acme.test",
                                kind=NoticeKind.CANCELED, data=SAMPLES[NoticeKind.CANCELED])
        assert render(message, "en")[0] == "Subscription canceled: access until Jan 5, 2027"
        assert render(message, "pt_BR")[0] == "Assinatura cancelada: acesso até 5 de jan. de 2027"


def test_an_old_notice_without_data_reads_as_it_was_written(app):
    with app.app_context():
        message = OutboxMessage(to_email="owner@acme.test", kind="dunning.failed", subject="Old / Antigo", body="Body")
        assert render(message, "en") == render(message, "pt_BR") == ("Old / Antigo", "Body")

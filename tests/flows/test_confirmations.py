"""Finding 4 of issue 16: a notice (and an e-mail, through the outbox) confirms every charge and every change.

Subscribed, upgraded with the amount charged, downgrade scheduled, downgrade undone, canceled with the
end date, resumed, card changed: each written in the same transaction as the change, once per
occasion (a reload, a second click or the webhook arriving after the redirect adds nothing), and
shown on the Notices tab in the reader's language.
"""
from __future__ import annotations

import re

from sqlalchemy import select

from billing.models import OutboxMessage, OutboxStatus
from tests.helpers.clients import MASTERCARD, local_path, open_checkout, pay_hosted_checkout, subscribe
from tests.helpers.data import short_session, subscription_of
from tests.flows.test_plan_changes import halfway_through_the_period, preview_form, start_of_a_thirty_day_month

FAILS_ON_CHARGE = "4000 0000 0000 0341"


def notices(app, app_id: int) -> list[OutboxMessage]:
    with short_session(app) as session:
        return list(session.scalars(select(OutboxMessage).where(OutboxMessage.app_id == app_id)
                                    .order_by(OutboxMessage.id)))


def kinds(app, app_id: int) -> list[str]:
    return [notice.kind for notice in notices(app, app_id)]


def notices_tab(client, app_id: int, language: str = "en") -> str:
    return client.get(f"/apps/{app_id}/notices", headers={"Accept-Language": language}).get_data(as_text=True)


def change_card(client, app_id: int, card: str = MASTERCARD, attempt: str = "card-0001"):
    opened = client.post(f"/apps/{app_id}/billing/payment-method", data={"attempt": attempt})
    saved = pay_hosted_checkout(opened.headers["Location"], card_number=card)
    return client.get(local_path(saved.headers["Location"]))


def test_every_charge_and_change_is_confirmed_once(billing_app, owner_http, tenant, sandbox):
    app_id = tenant.id
    start_of_a_thirty_day_month(billing_app, sandbox)
    paid = pay_hosted_checkout(open_checkout(owner_http, app_id, "pro"))
    owner_http.get(local_path(paid.headers["Location"]))
    owner_http.get(local_path(paid.headers["Location"]))  # a reload of the success page
    assert kinds(billing_app, app_id) == ["subscription.subscribed"]
    subscribed = notices(billing_app, app_id)[0]
    assert subscribed.data["plan"] == "pro" and (subscribed.data["amount"], subscribed.data["currency"]) == (9900, "BRL")
    assert subscribed.status == OutboxStatus.STORED and subscribed.subject is None and subscribed.body is None

    halfway_through_the_period(billing_app, sandbox, app_id)
    _, form = preview_form(owner_http, app_id)
    owner_http.post(f"/apps/{app_id}/billing/upgrade", data=form)
    owner_http.post(f"/apps/{app_id}/billing/upgrade", data=form)  # a double submit: no second charge, no notice
    upgraded = notices(billing_app, app_id)[-1]
    assert upgraded.kind == "subscription.upgraded"
    assert (upgraded.data["from_plan"], upgraded.data["plan"], upgraded.data["amount"]) == ("pro", "enterprise", 20000)

    confirm = owner_http.get(f"/apps/{app_id}/billing/downgrade?plan=pro").get_data(as_text=True)
    attempt = re.search(r'name="attempt" value="([^"]+)"', confirm).group(1)
    owner_http.post(f"/apps/{app_id}/billing/downgrade", data={"plan": "pro", "attempt": attempt})
    owner_http.post(f"/apps/{app_id}/billing/downgrade", data={"plan": "pro", "attempt": attempt})
    owner_http.post(f"/apps/{app_id}/billing/downgrade/undo")
    owner_http.post(f"/apps/{app_id}/billing/downgrade/undo")  # nothing left to undo: no notice
    owner_http.post(f"/apps/{app_id}/billing/cancel")
    owner_http.post(f"/apps/{app_id}/billing/cancel")
    owner_http.post(f"/apps/{app_id}/billing/resume")
    owner_http.post(f"/apps/{app_id}/billing/cancel")  # canceling again is a new occasion, told again
    owner_http.post(f"/apps/{app_id}/billing/resume")
    change_card(owner_http, app_id)

    assert kinds(billing_app, app_id) == [
        "subscription.subscribed", "subscription.upgraded", "subscription.downgrade_scheduled",
        "subscription.downgrade_undone", "subscription.cancel_scheduled", "subscription.resumed",
        "subscription.cancel_scheduled", "subscription.resumed", "payment_method.changed"]
    row = subscription_of(billing_app, app_id)
    by_kind = {notice.kind: notice for notice in notices(billing_app, app_id)}
    assert by_kind["subscription.downgrade_scheduled"].data["change_at"] == row.current_period_end.isoformat()
    assert by_kind["subscription.cancel_scheduled"].data["ends_at"] == row.current_period_end.isoformat()
    assert by_kind["payment_method.changed"].data == {"brand": "mastercard", "last4": "4444"}

    english = notices_tab(owner_http, app_id, "en")
    assert "Subscription confirmed: Pro" in english and "We charged R$99.00" in english
    assert "Plan upgraded to Enterprise: R$200.00 charged" in english
    assert "Plan change scheduled: Pro from" in english and "Scheduled plan change undone" in english
    assert "Subscription canceled: access until" in english and "Subscription resumed" in english
    assert "Mastercard card ending in 4444" in english
    assert "Cobramos" not in english and "No notices yet." not in english
    portuguese = notices_tab(owner_http, app_id, "pt-BR")
    assert "Assinatura confirmada: Pro" in portuguese and "Cobramos R$\xa099,00" in portuguese
    assert "Plano alterado para Enterprise: R$\xa0200,00 cobrados" in portuguese
    assert "Mastercard com final 4444" in portuguese and "We charged" not in portuguese


def test_the_webhook_after_the_redirect_confirms_nothing_twice(billing_app, owner_http, tenant, webhook_pipeline):
    subscribe(owner_http, tenant.id, "pro")
    webhook_pipeline.wait()
    assert kinds(billing_app, tenant.id) == ["subscription.subscribed"]


def test_a_declined_upgrade_confirms_nothing(billing_app, owner_http, tenant):
    subscribe(owner_http, tenant.id, "pro")
    change_card(owner_http, tenant.id, card=FAILS_ON_CHARGE)
    _, form = preview_form(owner_http, tenant.id)
    declined = owner_http.post(f"/apps/{tenant.id}/billing/upgrade", data=form, follow_redirects=True)
    assert "Your card was declined" in declined.get_data(as_text=True)
    assert kinds(billing_app, tenant.id) == ["subscription.subscribed", "payment_method.changed"]


def test_with_smtp_the_confirmations_wait_to_be_emailed(billing_app, owner_http, tenant):
    billing_app.config["SMTP_URL"] = "smtp://127.0.0.1:9"
    subscribe(owner_http, tenant.id, "pro")
    owner_http.post(f"/apps/{tenant.id}/billing/cancel")
    assert [n.status for n in notices(billing_app, tenant.id)] == [OutboxStatus.PENDING, OutboxStatus.PENDING]


def test_a_notice_to_the_owner_and_the_billing_email_shows_once(billing_app, owner_http, tenant):
    with short_session(billing_app) as session:
        from billing.models import App

        session.get(App, tenant.id).billing_email = "financeiro@acme.com.br"
    subscribe(owner_http, tenant.id, "pro")
    assert [n.to_email for n in notices(billing_app, tenant.id)] == ["financeiro@acme.com.br", "owner@acme.test"]
    page = notices_tab(owner_http, tenant.id)
    assert page.count('data-kind="subscription.subscribed"') == 1  # one occasion, however many recipients
    assert "To financeiro@acme.com.br" in page and "To owner@acme.test" in page

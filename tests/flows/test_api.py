"""The JSON API: checkout for API clients, the subscription and invoices; 400/401/404/409/502 as JSON."""
import re

import pytest
from sqlalchemy import select

from billing.models import ApiToken, AppSubscription, KernelCheckoutSession
from tests.helpers.clients import local_path, pay_hosted_checkout, signed_in_client, subscribe
from tests.helpers.data import count, customer_of


def create_token(app, email: str) -> str:
    result = app.test_cli_runner().invoke(args=["create-api-token", email, "--name", "ci"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[0]
    assert token.startswith("kbp_")
    return token


@pytest.fixture
def acme_token(billing_app, owner, tenant):
    return {"Authorization": f"Bearer {create_token(billing_app, owner.email)}"}


@pytest.fixture
def bravo_token(billing_app, other_owner, other_tenant):
    return {"Authorization": f"Bearer {create_token(billing_app, other_owner.email)}"}


def post_checkout(client, app_id, headers, body=None, **kwargs):
    return client.post(f"/api/v1/apps/{app_id}/billing/checkout", json=body if body is not None else {"plan": "pro"},
                       headers=headers, **kwargs)


def test_checkout_answers_the_session_url(billing_app, tenant, acme_token):
    client = billing_app.test_client()
    response = post_checkout(client, tenant.id, {**acme_token, "Idempotency-Key": "client-retry-01"})
    assert response.status_code == 201
    session = response.get_json()["checkout_session"]
    assert session["url"].startswith("http") and session["plan"] == "pro" and session["status"] == "open"

    retried = post_checkout(client, tenant.id, {**acme_token, "Idempotency-Key": "client-retry-01"})
    assert retried.status_code == 201 and retried.get_json()["checkout_session"]["id"] == session["id"]
    assert count(billing_app, KernelCheckoutSession) == 1

    paid = pay_hosted_checkout(session["url"])
    assert paid.headers["Location"].endswith(f"/billing/success?session_id={session['id']}")


def test_checkout_conflicts_with_a_live_subscription(billing_app, owner_http, tenant, acme_token):
    subscribe(owner_http, tenant.id)
    response = post_checkout(billing_app.test_client(), tenant.id, acme_token, {"plan": "enterprise"})
    assert response.status_code == 409
    assert response.get_json()["error"]["reason"] == "live_subscription"


@pytest.mark.parametrize("body, reason", [
    ({"plan": "platinum"}, "unknown_plan"),
    ({}, "unknown_plan"),
    ({"plan": "free"}, "plan_unavailable"),
    ([], "invalid_body"),
])
def test_bad_input_is_a_400_and_writes_nothing(billing_app, tenant, acme_token, body, reason):
    response = post_checkout(billing_app.test_client(), tenant.id, acme_token, body)
    assert response.status_code == 400 and response.get_json()["error"]["reason"] == reason
    assert count(billing_app, KernelCheckoutSession) == 0 and customer_of(billing_app, tenant.id) is None


def test_a_malformed_idempotency_key_is_a_400(billing_app, tenant, acme_token):
    response = post_checkout(billing_app.test_client(), tenant.id, {**acme_token, "Idempotency-Key": "bad key!"})
    assert response.status_code == 400 and response.is_json


def test_no_token_is_a_401_and_a_bad_token_too(billing_app, tenant):
    client = billing_app.test_client()
    assert post_checkout(client, tenant.id, {}).status_code == 401
    assert post_checkout(client, tenant.id, {"Authorization": "Bearer kbp_not_a_token"}).status_code == 401


def test_another_tenants_app_is_a_404(billing_app, tenant, bravo_token):
    client = billing_app.test_client()
    response = post_checkout(client, tenant.id, bravo_token)
    assert response.status_code == 404 and response.is_json
    assert client.get(f"/api/v1/apps/{tenant.id}/subscription", headers=bravo_token).status_code == 404
    assert client.get(f"/api/v1/apps/{tenant.id}/invoices", headers=bravo_token).status_code == 404
    assert count(billing_app, KernelCheckoutSession) == 0
    listed = client.get("/api/v1/apps", headers=bravo_token).get_json()["data"]
    assert [app["slug"] for app in listed] == ["bravo"]


def test_stripe_down_is_a_502_and_writes_nothing(billing_app, tenant, acme_token, sandbox):
    sandbox.fail(count=20, status=503)
    response = post_checkout(billing_app.test_client(), tenant.id, {**acme_token, "Accept-Language": "en"})
    assert response.status_code == 502
    error = response.get_json()["error"]
    assert error["reason"] == "gateway_unavailable" and "nothing was charged" in error["message"]
    assert count(billing_app, KernelCheckoutSession) == 0 and customer_of(billing_app, tenant.id) is None


def test_subscription_and_invoices_as_json(billing_app, owner_http, tenant, acme_token):
    client = billing_app.test_client()
    free = client.get(f"/api/v1/apps/{tenant.id}/subscription", headers=acme_token).get_json()
    assert free["subscription"] is None and free["slug"] == "acme"

    subscribe(owner_http, tenant.id)
    body = client.get(f"/api/v1/apps/{tenant.id}/subscription", headers=acme_token).get_json()["subscription"]
    assert body["plan"] == "pro" and body["status"] == "active"
    assert (body["amount"], body["currency"]) == (9900, "BRL")
    assert body["card"] == {"brand": "visa", "last4": "4242"} and body["cancel_at_period_end"] is False
    assert body["current_period_end"] > body["current_period_start"]

    invoices = client.get(f"/api/v1/apps/{tenant.id}/invoices", headers=acme_token).get_json()
    assert invoices["total"] == 1 and invoices["has_more"] is False
    (invoice,) = invoices["data"]
    assert (invoice["amount_paid"], invoice["currency"], invoice["status"]) == (9900, "BRL", "paid")


def test_a_browser_session_must_send_the_csrf_token(billing_app, owner, tenant):
    client = signed_in_client(billing_app, owner)
    billing_app.config["WTF_CSRF_ENABLED"] = True
    refused = client.post(f"/api/v1/apps/{tenant.id}/billing/checkout", json={"plan": "pro"})
    assert refused.status_code == 400 and refused.is_json
    page = client.get(f"/apps/{tenant.id}/billing").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    accepted = client.post(f"/api/v1/apps/{tenant.id}/billing/checkout", json={"plan": "pro"},
                           headers={"X-CSRFToken": token})
    assert accepted.status_code == 201


def test_the_token_command(billing_app, owner):
    token = create_token(billing_app, owner.email)
    with billing_app.app_context():
        from portal.extensions import db
        row = db.session.scalar(select(ApiToken))
        assert row.name == "ci" and row.token_hash != token and token.startswith(row.prefix)
    unknown = billing_app.test_cli_runner().invoke(args=["create-api-token", "nobody@x.test", "--name", "ci"])
    assert unknown.exit_code != 0 and "no active user" in unknown.output


def test_paying_an_api_checkout_activates_the_subscription(billing_app, owner_http, tenant, acme_token):
    session = post_checkout(billing_app.test_client(), tenant.id, acme_token).get_json()["checkout_session"]
    back = pay_hosted_checkout(session["url"])
    owner_http.get(local_path(back.headers["Location"]))
    assert count(billing_app, AppSubscription) == 1

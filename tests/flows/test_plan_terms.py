"""A plan's currency and interval come from the plan: the card-saving Checkout is set up in the currency the app
is billed in, and the pages say the plan's interval instead of assuming a month."""
from billing.money import Money
from portal.payments import gateway
from tests.helpers.clients import subscribe
from tests.helpers.data import set_plan
from tests.helpers.sandbox import make_client


def _setup_currency(sandbox, client, app_id: int) -> str:
    """Press "Update card"; the currency of the setup Checkout Session the portal opened, as the sandbox holds it."""
    response = client.post(f"/apps/{app_id}/billing/payment-method", data={"attempt": "attempt-card-0001"})
    assert response.status_code == 303, response.get_data(as_text=True)
    session_id = response.headers["Location"].rstrip("/").split("/")[-1]
    return make_client(sandbox.url).v1.checkout.sessions.retrieve(session_id)["currency"]


def test_the_card_update_checkout_uses_the_currency_of_the_app_s_plan(billing_app, sandbox, owner_http, tenant):
    with billing_app.app_context():
        usd_price = gateway().ensure_price(plan_code="pro", name="Pro", amount=Money(1900, "USD"))
    set_plan(billing_app, "pro", amount=1900, currency="USD", stripe_price_id=usd_price)
    subscribe(owner_http, tenant.id, "pro")
    assert _setup_currency(sandbox, owner_http, tenant.id) == "usd"


def test_without_a_subscription_the_card_is_set_up_in_the_catalogue_s_currency(billing_app, sandbox, owner_http,
                                                                                tenant):
    assert _setup_currency(sandbox, owner_http, tenant.id) == "brl"


def test_the_billing_page_says_each_plan_s_own_interval(app, owner_client, tenant):
    set_plan(app, "enterprise", interval="year")
    html = owner_client.get(f"/apps/{tenant.id}/billing").get_data(as_text=True)
    assert "R$499.00 <span class=\"muted\">per year</span>" in html
    assert "R$99.00 <span class=\"muted\">per month</span>" in html

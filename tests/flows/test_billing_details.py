"""Finding 10 of issue 16: billing details (legal name, CPF or CNPJ, billing e-mail, Brazilian address).

Editable by the owner, checked (check digits, CEP, UF), saved here and sent to the Stripe customer
(``tax_id_data`` on create; afterwards the customer's tax_ids endpoint), shown on our invoice page.
"""
from __future__ import annotations

import re

import pytest
import requests

from billing.models import App, AppBillingDetails
from tests.helpers.clients import signed_in_client, subscribe
from tests.helpers.data import audit_actions, count, customer_of, short_session
from tests.helpers.sandbox import make_client

CPF = "390.533.447-05"
CNPJ = "11.222.333/0001-81"
FORM = {"legal_name": "Ana Maria Souza", "tax_id": CPF, "email": "Financeiro@Acme.com.br", "postal_code": "01310-100",
        "street": "Avenida Paulista", "number": "1000", "complement": "Conjunto 12", "district": "Bela Vista",
        "city": "São Paulo", "state": "SP"}


def details_of(app, app_id: int) -> AppBillingDetails | None:
    with short_session(app) as session:
        return session.get(AppBillingDetails, app_id)


def stripe_customer(sandbox, customer_id: str):
    client = make_client(sandbox.url)
    customer = client.v1.customers.retrieve(customer_id)
    tax_ids = [(t["type"], t["value"]) for t in client.v1.customers.tax_ids.list(customer_id)["data"]]
    return customer, tax_ids


def save(client, app_id: int, **changes):
    return client.post(f"/apps/{app_id}/billing/details", data={**FORM, **changes}, follow_redirects=True)


def test_details_saved_before_the_first_checkout_reach_the_new_customer(billing_app, owner_http, tenant, sandbox):
    page = save(owner_http, tenant.id).get_data(as_text=True)
    assert "Your billing details were saved." in page and 'value="390.533.447-05"' in page
    saved = details_of(billing_app, tenant.id)
    assert (saved.legal_name, saved.tax_id_kind, saved.tax_id, saved.postal_code, saved.state) == \
        ("Ana Maria Souza", "br_cpf", "39053344705", "01310100", "SP")
    with short_session(billing_app) as session:
        assert session.get(App, tenant.id).billing_email == "financeiro@acme.com.br"
    assert "billing_details.saved" in audit_actions(billing_app, tenant.id)

    subscribe(owner_http, tenant.id, "pro")
    customer, tax_ids = stripe_customer(sandbox, customer_of(billing_app, tenant.id))
    assert customer["name"] == "Ana Maria Souza" and customer["email"] == "financeiro@acme.com.br"
    assert customer["address"]["line1"] == "Avenida Paulista, 1000"
    assert customer["address"]["line2"] == "Conjunto 12 - Bela Vista"
    assert (customer["address"]["postal_code"], customer["address"]["state"], customer["address"]["country"]) == \
        ("01310-100", "SP", "BR")
    assert tax_ids == [("br_cpf", "39053344705")]
    assert details_of(billing_app, tenant.id).synced_at is not None

    listing = owner_http.get(f"/apps/{tenant.id}/invoices").get_data(as_text=True)
    invoice_id = re.search(rf"/apps/{tenant.id}/invoices/(\d+)", listing).group(1)
    invoice = owner_http.get(f"/apps/{tenant.id}/invoices/{invoice_id}").get_data(as_text=True)
    billed = invoice[invoice.index('id="billed-to"'):]
    billed = billed[:billed.index("</dd>")]
    assert "Ana Maria Souza" in billed and "CPF 390.533.447-05" in billed and "Avenida Paulista, 1000" in billed
    assert "São Paulo - SP" in billed and "01310-100" in billed and "financeiro@acme.com.br" in billed
    # The sandbox's hosted invoice prints them too, as Stripe's does.
    hosted = requests.get(re.search(r'id="hosted-invoice" href="([^"]+)"', invoice).group(1), timeout=10).text
    assert "CPF 39053344705" in hosted and "Avenida Paulista, 1000" in hosted and "01310-100" in hosted


def test_an_edit_replaces_the_customers_tax_id_and_address(billing_app, owner_http, tenant, sandbox):
    subscribe(owner_http, tenant.id, "pro")
    save(owner_http, tenant.id)
    page = save(owner_http, tenant.id, tax_id="11222333000181", legal_name="Acme Analytics Ltda", number="2000",
                complement="", email="").get_data(as_text=True)
    assert "They will appear on your next invoices." in page and 'value="11.222.333/0001-81"' in page
    customer, tax_ids = stripe_customer(sandbox, customer_of(billing_app, tenant.id))
    assert tax_ids == [("br_cnpj", "11222333000181")]  # the CPF is gone
    assert customer["name"] == "Acme Analytics Ltda" and customer["address"]["line1"] == "Avenida Paulista, 2000"
    assert customer["address"]["line2"] == "Bela Vista" and not customer["email"]
    # Back to the first values: a new edit, sent again (not a replay of the first request).
    save(owner_http, tenant.id)
    customer, tax_ids = stripe_customer(sandbox, customer_of(billing_app, tenant.id))
    assert tax_ids == [("br_cpf", "39053344705")] and customer["name"] == "Ana Maria Souza"


@pytest.mark.parametrize("field,value,message", [
    ("tax_id", "390.533.447-06", "This CPF or CNPJ is not valid: check its digits."),
    ("tax_id", "11.222.333/0001-82", "This CPF or CNPJ is not valid: check its digits."),
    ("tax_id", "123.456", "Enter a CPF (11 digits) or a CNPJ (14 digits)."),
    ("postal_code", "0131-100", "Enter the CEP's 8 digits, like 01310-100."),
    ("state", "XX", "Not a valid choice."),
    ("email", "not-an-email", "Invalid email address."),
    ("legal_name", "", "This field is required."),
])
def test_bad_input_is_refused_with_a_clear_error_and_changes_nothing(billing_app, owner_http, tenant, sandbox,
                                                                     field, value, message):
    response = owner_http.post(f"/apps/{tenant.id}/billing/details", data={**FORM, field: value})
    assert response.status_code == 400
    page = response.get_data(as_text=True).replace("&#39;", "'")
    assert message in page and "Nothing was saved." in page
    assert details_of(billing_app, tenant.id) is None
    assert count(billing_app, AppBillingDetails) == 0 and "billing_details.saved" not in audit_actions(
        billing_app, tenant.id)


def test_stripe_down_keeps_the_details_and_says_so(billing_app, owner_http, tenant, sandbox):
    subscribe(owner_http, tenant.id, "pro")
    sandbox.fail(count=20, status=503)
    page = save(owner_http, tenant.id).get_data(as_text=True)
    assert "Stripe could not be reached" in page
    assert details_of(billing_app, tenant.id).synced_at is None
    sandbox.fail(count=0, status=503)


def test_another_tenants_details_are_a_404(billing_app, owner_http, other_tenant):
    assert owner_http.get(f"/apps/{other_tenant.id}/billing/details").status_code == 404
    assert owner_http.post(f"/apps/{other_tenant.id}/billing/details", data=FORM).status_code == 404
    assert details_of(billing_app, other_tenant.id) is None


def test_the_form_needs_its_csrf_token(billing_app, owner, tenant):
    client = signed_in_client(billing_app, owner)
    billing_app.config["WTF_CSRF_ENABLED"] = True  # after signing in (the tests' sign-in posts no token)
    response = client.post(f"/apps/{tenant.id}/billing/details", data=FORM)
    assert response.status_code == 400 and details_of(billing_app, tenant.id) is None


def test_portuguese_form(billing_app, owner_http, tenant):
    page = owner_http.get(f"/apps/{tenant.id}/billing/details", headers={"Accept-Language": "pt-BR"})
    text = page.get_data(as_text=True)
    assert "Dados de cobrança" in text and "CPF ou CNPJ" in text and "Bairro" in text


def test_a_checkout_after_a_lost_customer_create_and_an_edit_of_the_details(billing_app, owner_http, tenant, sandbox):
    """The first checkout's customer create reached Stripe but its answer was lost (the app kept no customer);
    the owner then saved billing details and tried again within the key's 24 hours. The retry sends other
    values, so it must not reuse the first request's key, which Stripe refuses with other parameters."""
    from billing.models import GatewayIdempotencyConflict
    from billing.subscriptions import _customer_to_create
    from portal.extensions import db
    from portal.payments import gateway

    with billing_app.app_context():
        lost = _customer_to_create(db.session, db.session.get(App, tenant.id))
        db.session.commit()
        assert lost is not None
        gateway().create_customer(**lost)  # reached Stripe; its answer never came back
    save(owner_http, tenant.id)
    subscribe(owner_http, tenant.id, "pro")
    customer, tax_ids = stripe_customer(sandbox, customer_of(billing_app, tenant.id))
    assert customer["name"] == "Ana Maria Souza" and tax_ids == [("br_cpf", "39053344705")]
    assert count(billing_app, GatewayIdempotencyConflict) == 0

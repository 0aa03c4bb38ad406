"""Customer details Stripe keeps: address, e-mail, preferred locales and Brazilian tax ids."""

from __future__ import annotations

import pytest
import stripe

from . import helpers


def test_address_locales_and_tax_ids_are_kept_and_listed(stripe_client):
    cus = stripe_client.v1.customers.create({
        "email": "dona@acme.test", "preferred_locales": ["pt-BR", "en"],
        "address": {"line1": "Av. Paulista 1000", "city": "São Paulo", "state": "SP", "postal_code": "01310-100",
                    "country": "BR"},
        "tax_id_data": [{"type": "br_cpf", "value": "123.456.789-09"},
                        {"type": "br_cnpj", "value": "12.345.678/0001-95"}]})
    assert cus.preferred_locales == ["pt-BR", "en"] and cus.address.city == "São Paulo" and cus.address.line2 is None
    assert "tax_ids" not in cus  # includable: only when expanded
    expanded = stripe_client.v1.customers.retrieve(cus.id, {"expand": ["tax_ids"]})
    assert [(t.type, t.value, t.customer) for t in expanded.tax_ids.data] == [
        ("br_cnpj", "12.345.678/0001-95", cus.id), ("br_cpf", "123.456.789-09", cus.id)]
    assert [t.id for t in stripe_client.v1.customers.tax_ids.list(cus.id).data] == [t.id for t in expanded.tax_ids.data]
    assert helpers.event_types(stripe_client) == ["customer.created", "customer.tax_id.created",
                                                  "customer.tax_id.created"]
    moved = stripe_client.v1.customers.update(cus.id, {"address": {"line1": "Rua B 2", "country": "BR"},
                                                       "email": "nova@acme.test"})
    assert (moved.address.line1, moved.address.city, moved.email) == ("Rua B 2", None, "nova@acme.test")
    assert stripe_client.v1.customers.update(cus.id, {"address": ""}).address is None


def test_bad_tax_ids_are_refused_and_make_nothing(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as bad:
        stripe_client.v1.customers.create({"tax_id_data": [{"type": "br_cpf", "value": "123"}]})
    assert bad.value.code == "tax_id_invalid" and bad.value.param == "tax_id_data[0][value]"
    with pytest.raises(stripe.InvalidRequestError, match="sandbox does not support"):
        stripe_client.v1.customers.create({"tax_id_data": [{"type": "eu_vat", "value": "DE123456789"}]})
    with pytest.raises(stripe.InvalidRequestError) as on_update:
        cus = stripe_client.v1.customers.create({})
        stripe_client.v1.customers.update(cus.id, {"tax_id_data": [{"type": "br_cpf", "value": "12345678909"}]})
    assert on_update.value.code == "parameter_unknown"
    assert len(stripe_client.v1.customers.list().data) == 1


def test_tax_ids_are_added_and_removed_after_creation(stripe_client):
    cus = stripe_client.v1.customers.create({"tax_id_data": [{"type": "br_cpf", "value": "39053344705"}]})
    added = stripe_client.v1.customers.tax_ids.create(cus.id, {"type": "br_cnpj", "value": "11222333000181"})
    assert (added.object, added.type, added.value, added.customer) == ("tax_id", "br_cnpj", "11222333000181", cus.id)
    first = stripe_client.v1.customers.tax_ids.list(cus.id).data[-1]
    gone = stripe_client.v1.customers.tax_ids.delete(cus.id, first.id)
    assert (gone.id, gone.deleted) == (first.id, True)
    assert [(t.type, t.value) for t in stripe_client.v1.customers.tax_ids.list(cus.id).data] == [
        ("br_cnpj", "11222333000181")]
    with pytest.raises(stripe.InvalidRequestError) as again:
        stripe_client.v1.customers.tax_ids.delete(cus.id, first.id)
    assert again.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as bad:
        stripe_client.v1.customers.tax_ids.create(cus.id, {"type": "br_cpf", "value": "123"})
    assert bad.value.code == "tax_id_invalid" and bad.value.param == "value"
    assert helpers.event_types(stripe_client)[-2:] == ["customer.tax_id.created", "customer.tax_id.deleted"]

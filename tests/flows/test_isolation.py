"""Tenant isolation beyond the app id: another tenant's invoice or alert id in an owner's URL is a 404.

``tests/test_access.py`` walks every route with an ``app_id`` using another
tenant's app; here every route with an ``invoice_id`` or ``alert_id`` is walked
with the owner's *own* app id and the other tenant's object, which only a check
scoped to the app catches.
"""
import re

import pytest

from billing import audit
from billing.models import AlertSeverity
from portal import create_app
from tests.helpers.data import short_session
from tests.flows.test_invoices import add_invoices


def _rules_with(*arguments):
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True, "BILLING_CLOCK_FOLLOWS_GATEWAY": False})
    return [rule for rule in app.url_map.iter_rules() if set(arguments) & set(rule.arguments)]


def _fill(rule, values):
    path = rule.rule
    for argument in rule.arguments:
        path = re.sub(rf"<(?:[^:<>]+:)?{argument}>", str(values[argument]), path)
    return path


def _method(rule):
    return "GET" if "GET" in rule.methods else sorted(rule.methods - {"HEAD", "OPTIONS"})[0]


OBJECT_ROUTES = _rules_with("invoice_id", "alert_id")


def test_the_walk_finds_the_object_routes():
    endpoints = {rule.endpoint for rule in OBJECT_ROUTES}
    assert {"invoices.detail", "admin.resolve_alert"} <= endpoints


@pytest.mark.parametrize("rule", OBJECT_ROUTES, ids=[r.endpoint for r in OBJECT_ROUTES])
def test_another_tenants_object_under_my_app_is_a_404(app, owner_client, tenant, other_tenant, rule):
    (their_invoice,) = add_invoices(app, other_tenant.id, 1, prefix="BRAVO")
    with short_session(app) as session:
        their_alert = audit.raise_alert(session, kind="test", message="theirs", severity=AlertSeverity.INFO,
                                        app_id=other_tenant.id)
        session.flush()
        alert_id = their_alert.id
    values = {"app_id": tenant.id, "invoice_id": their_invoice, "alert_id": alert_id}
    response = owner_client.open(_fill(rule, values), method=_method(rule))
    assert response.status_code == 404
    with short_session(app) as session:
        from billing.models import Alert
        assert session.get(Alert, alert_id).resolved_at is None

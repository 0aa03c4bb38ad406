"""Every protected route refuses an anonymous visitor, and every route with an id is tenant-isolated.

Both tests walk the app's URL map, so a new route is covered the day it is added.
"""
import re

import pytest

from portal import create_app
from billing.models import Role
from tests.helpers.data import make_app, make_user

# Routes anyone may reach: the sign-in page, the home redirect, static files, the
# language switch, endpoints with their own authentication (signatures; /metrics: this machine or a token,
# tests/ops/test_metrics.py) and the probes, which say only what is up.
PUBLIC_ENDPOINTS = {"static", "auth.login", "dashboard.home", "i18n.switch_language", "webhooks.stripe",
                    "gateway_api.gateway_webhook", "gateway_api.openapi",
                    "ops.healthz", "ops.readyz", "ops.prometheus_metrics"}
# JSON endpoints outside /api/ (bearer token or session): anonymous callers get a 401 JSON, not a redirect.
JSON_ENDPOINTS = {"billing_reconciliation.day_figures", "gateway_api.tokenize", "gateway_api.authorize",
                  "gateway_api.capture", "gateway_api.refund", "gateway_api.refund_status"}


def _rules():
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True, "BILLING_CLOCK_FOLLOWS_GATEWAY": False})
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint not in PUBLIC_ENDPOINTS]


def _fill(rule, values: dict) -> str:
    path = rule.rule
    for argument in rule.arguments:
        path = re.sub(rf"<(?:[^:<>]+:)?{argument}>", str(values.get(argument, 1)), path)
    return path


def _method(rule) -> str:
    return "GET" if "GET" in rule.methods else sorted(rule.methods - {"HEAD", "OPTIONS"})[0]


PROTECTED = _rules()


@pytest.mark.parametrize("rule", PROTECTED, ids=[r.endpoint for r in PROTECTED])
def test_anonymous_visitor_is_refused(client, rule):
    response = client.open(_fill(rule, {}), method=_method(rule))
    if rule.rule.startswith("/api/") or rule.endpoint in JSON_ENDPOINTS:
        assert response.status_code == 401
        assert response.is_json
    else:
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")


ID_ROUTES = [rule for rule in PROTECTED if {"app_id", "invoice_id", "alert_id", "event_id"} & set(rule.arguments)]


@pytest.mark.parametrize("rule", ID_ROUTES, ids=[r.endpoint for r in ID_ROUTES])
def test_another_tenants_object_is_a_404(app, rule):
    mine_owner = make_user(app, "mine@acme.test")
    make_app(app, "Mine", mine_owner)
    theirs = make_app(app, "Theirs", make_user(app, "theirs@bravo.test"))
    client = app.test_client()
    client.post("/login", data={"email": "mine@acme.test", "password": "correct-horse-battery"})
    response = client.open(_fill(rule, {"app_id": theirs.id}), method=_method(rule))
    assert response.status_code == 404


def test_the_route_walk_finds_routes():
    # Guards the two tests above against silently parametrizing over nothing.
    assert any(r.endpoint == "dashboard.index" for r in PROTECTED)
    assert any(r.endpoint == "dashboard.app_detail" for r in ID_ROUTES)


INT_ROUTES = [rule for rule in PROTECTED if "<int:" in rule.rule]


@pytest.mark.parametrize("rule", INT_ROUTES, ids=[r.endpoint for r in INT_ROUTES])
def test_an_id_too_large_for_any_table_is_a_404(app, rule):
    # Signed in as a superadmin, who passes every tenancy check: the id itself must stop the request.
    make_user(app, "root@kernel.test", role=Role.SUPERADMIN)
    client = app.test_client()
    client.post("/login", data={"email": "root@kernel.test", "password": "correct-horse-battery"})
    huge = {argument: "99999999999999999999999" for argument in rule.arguments}
    response = client.open(_fill(rule, huge), method=_method(rule))
    assert response.status_code == 404


def test_the_route_walk_finds_int_routes():
    assert any(r.endpoint == "dashboard.app_detail" for r in INT_ROUTES)

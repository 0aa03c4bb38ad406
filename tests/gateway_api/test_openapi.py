"""The gateway API matches its OpenAPI 3.1 document: schemathesis generates requests from it, and every answer
has a documented status code, content type and shape, and is never a 500."""
from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers.gateway_api import issue_key

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_the_api_keeps_its_contract(billing_app, tenant):
    # Schemathesis's own pytest plugin does not run under pytest 9 (it reads Function._nodeid), so its Hypothesis
    # strategies drive the requests here, one operation after another.
    billing_app.config["GATEWAY_WEBHOOK_SECRETS"] = {"acquirer": "acquirer-secret"}
    headers = {"Authorization": f"Bearer {issue_key(billing_app, tenant)}"}
    schema = schemathesis.openapi.from_wsgi("/billing/openapi.json", billing_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 7

    for operation in operations:
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def keeps_contract(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        keeps_contract()


def test_the_document_lists_every_endpoint(client):
    document = client.get("/billing/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {"/billing/tokenize", "/billing/authorizations", "/billing/captures",
                                      "/billing/refunds", "/billing/refunds/{refund_id}", "/billing/reconciliation",
                                      "/billing/webhooks/{gateway}"}

"""The OpenAPI 3.1 document of the Billing Gateway API, served at ``/billing/openapi.json``.

Kept as data next to the views it describes; tests/gateway_api/test_openapi.py runs
schemathesis against it, so the two cannot drift apart silently.
"""
from __future__ import annotations

from typing import Any

from billing.gateway_api import MAX_KEY_LENGTH
from billing.money import CURRENCY_EXPONENTS

DECIMAL = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "examples": ["150.00"],
           "description": "A decimal string in the currency's precision (2 places for BRL, 0 for JPY)."}
CURRENCY = {"type": "string", "enum": sorted(CURRENCY_EXPONENTS), "examples": ["BRL"]}
IDEMPOTENCY_KEY = {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH,
                   "description": "Same key and body: the stored answer again. Same key, other body: 409."}
TIMESTAMP = {"type": "string", "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": _json(_ref("Error"), "Invalid input or a business rule; `fields` has one message per field."),
    "401": _json(_ref("Error"), "No valid service key."),
    "403": _json(_ref("Error"), "The key does not allow this operation."),
    "404": _json(_ref("Error"), "Unknown gateway, or no such object for this key's app."),
}
IDEMPOTENT_ERRORS = {
    **ERRORS,
    "409": _json(_ref("Error"), "The idempotency key was used with another body, or its first request still runs."),
    "502": _json(_ref("Error"), "The provider failed; `reference` is in our logs with the provider's error."),
}
DECLINE = {"402": _json(_ref("Error"), "The card was declined; `decline_code` says why.")}


def _post(summary: str, request_schema: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {"post": {
        "summary": summary,
        "security": [{"serviceKey": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request_schema)}}},
        "responses": responses,
    }}


SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {
            "code": {"type": "integer"}, "message": {"type": "string"}, "reason": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            "decline_code": {"type": "string"}, "reference": {"type": "string"},
        }}}},
    "Card": {"type": "object", "required": ["number", "exp_month", "exp_year"], "properties": {
        "number": {"type": "string", "examples": ["4242424242424242"]},
        "exp_month": {"type": "integer", "minimum": 1, "maximum": 12},
        "exp_year": {"type": "integer", "minimum": 2000, "maximum": 2100},
        "cvc": {"type": "string", "description": "Sent to the gateway, never stored."}}},
    "TokenizeRequest": {"type": "object", "required": ["gateway", "card"], "properties": {
        "gateway": {"type": "string", "examples": ["sandbox"]}, "card": _ref("Card")}},
    "Token": {"type": "object", "required": ["token_reference", "gateway", "brand", "last4", "exp_month", "exp_year"],
              "properties": {
                  "token_reference": {"type": "string"}, "gateway": {"type": "string"},
                  "brand": {"type": "string"}, "last4": {"type": "string", "pattern": "^[0-9]{4}$"},
                  "exp_month": {"type": "integer"}, "exp_year": {"type": "integer"}, "created_at": TIMESTAMP}},
    "AuthorizationRequest": {
        "type": "object", "required": ["gateway", "token_reference", "amount", "currency", "idempotency_key"],
        "properties": {
            "gateway": {"type": "string"}, "token_reference": {"type": "string"}, "amount": DECIMAL,
            "currency": CURRENCY, "capture": {"type": "boolean", "default": False},
            "idempotency_key": IDEMPOTENCY_KEY,
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}}}},
    "Authorization": {
        "type": "object",
        "required": ["authorization_id", "status", "amount", "currency", "capture_pending", "gateway_reference",
                     "created_at", "metadata"],
        "properties": {
            "authorization_id": {"type": "string"}, "status": {"type": "string", "enum": ["approved", "captured"]},
            "amount": DECIMAL, "currency": CURRENCY, "capture_pending": {"type": "boolean"},
            "capture_id": {"type": ["string", "null"]}, "gateway": {"type": "string"},
            "gateway_reference": {"type": "string"}, "created_at": TIMESTAMP,
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}}}},
    "CaptureRequest": {"type": "object", "required": ["authorization_id", "idempotency_key"], "properties": {
        "authorization_id": {"type": "string"}, "amount": DECIMAL, "currency": CURRENCY,
        "idempotency_key": IDEMPOTENCY_KEY}},
    "Capture": {"type": "object",
                "required": ["capture_id", "authorization_id", "status", "amount", "currency", "amount_refunded"],
                "properties": {
                    "capture_id": {"type": "string"}, "authorization_id": {"type": "string"},
                    "status": {"const": "captured"}, "amount": DECIMAL, "currency": CURRENCY,
                    "amount_refunded": DECIMAL, "gateway_reference": {"type": "string"}, "created_at": TIMESTAMP}},
    "RefundRequest": {"type": "object", "required": ["capture_id", "reason", "idempotency_key"], "properties": {
        "capture_id": {"type": "string"}, "amount": {**DECIMAL, "description": "Omit to refund all that is left."},
        "currency": CURRENCY, "reason": {"type": "string", "minLength": 1},
        "idempotency_key": IDEMPOTENCY_KEY}},
    "Refund": {"type": "object", "required": ["refund_id", "status", "amount", "currency", "reason", "created_at"],
               "properties": {
                   "refund_id": {"type": "string"}, "capture_id": {"type": ["string", "null"]},
                   "status": {"type": "string",
                              "enum": ["pending_approval", "executing", "succeeded", "refused", "failed"]},
                   "amount": DECIMAL, "currency": CURRENCY, "reason": {"type": "string"},
                   "gateway_reference": {"type": ["string", "null"]}, "failure": {"type": ["string", "null"]},
                   "created_at": TIMESTAMP, "executed_at": {"type": ["string", "null"], "format": "date-time"}}},
    "Reconciliation": {"type": "object", "required": ["date", "gateway", "paid", "failed", "refunded"],
                       "properties": {"date": {"type": "string", "format": "date"}, "gateway": {"type": "string"},
                                      "paid": {"type": "object"}, "failed": {"type": "object"},
                                      "refunded": {"type": "object"}}},
    "Received": {"type": "object", "required": ["received"], "properties": {"received": {"const": True}}},
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Kernel Billing Gateway API", "version": "1.0.0",
                 "description": "Server-to-server payments for the kernel's services (docs/gateway-api.md). "
                                "Amounts are decimal strings; every write takes an idempotency_key."},
        "paths": {
            "/billing/tokenize": _post("Card data in, a masked token out", "TokenizeRequest", {
                "201": _json(_ref("Token"), "The token (PAN and CVV are not kept)."), **ERRORS, **DECLINE,
                "502": IDEMPOTENT_ERRORS["502"]}),
            "/billing/authorizations": _post("Authorize (manual capture) or charge at once", "AuthorizationRequest", {
                "201": _json(_ref("Authorization"), "Approved."), **IDEMPOTENT_ERRORS, **DECLINE}),
            "/billing/captures": _post("Capture an authorization, fully or partly, once", "CaptureRequest", {
                "201": _json(_ref("Capture"), "Captured."), **IDEMPOTENT_ERRORS}),
            "/billing/refunds": _post("Request a refund of a capture (dual control)", "RefundRequest", {
                "201": _json(_ref("Refund"), "Executed at once (below the approval threshold), or refused by the "
                                             "provider (`status: failed`)."),
                "202": _json(_ref("Refund"), "Waiting for a superadmin's approval, or for a retry."),
                **IDEMPOTENT_ERRORS}),
            "/billing/refunds/{refund_id}": {"get": {
                "summary": "Where a refund request stands",
                "security": [{"serviceKey": []}],
                "parameters": [{"name": "refund_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json(_ref("Refund"), "The refund request."), **ERRORS}}},
            "/billing/reconciliation": {"get": {
                "summary": "The day's paid, failed and refunded sums (superadmin bearer token)",
                "security": [{"userToken": []}],
                "parameters": [
                    {"name": "date", "in": "query", "required": True, "schema": {"type": "string", "format": "date"}},
                    {"name": "gateway", "in": "query", "schema": {"type": "string", "default": "stripe"}}],
                "responses": {"200": _json(_ref("Reconciliation"), "The day's figures."), **ERRORS}}},
            "/billing/webhooks/{gateway}": {"post": {
                "summary": "A signed event from a gateway (Stripe-Signature for stripe, X-Gateway-Signature else)",
                "security": [],
                "parameters": [
                    {"name": "gateway", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "Stripe-Signature", "in": "header", "schema": {"type": "string"}},
                    {"name": "X-Gateway-Signature", "in": "header", "schema": {"type": "string"},
                     "description": "Hex HMAC-SHA256 of the raw body under the gateway's secret."}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {
                    "200": _json(_ref("Received"), "Recorded (or already held)."),
                    "400": _json(_ref("Error"), "Unsigned, badly signed or malformed: nothing written."),
                    "404": _json(_ref("Error"), "Unknown gateway."),
                    "413": _json(_ref("Error"), "Too large."),
                    "429": _json(_ref("Error"), "Too many events from this address.")}}},
        },
        "components": {
            "securitySchemes": {
                "serviceKey": {"type": "http", "scheme": "bearer", "description": "A service key (kgw_...)."},
                "userToken": {"type": "http", "scheme": "bearer", "description": "A superadmin's API token (kbp_...)."},
            },
            "schemas": SCHEMAS,
        },
    }

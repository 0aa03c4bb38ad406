"""Errors in Stripe's JSON shape, raised anywhere and rendered by the server."""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An error answered as ``{"error": {...}}`` with Stripe's HTTP status.

    ``keep_changes`` tells the server to commit what the request wrote before
    failing: Stripe records a failed payment attempt (charge, PaymentIntent
    state, invoice attempt_count, events) even though the call answers 402.
    """

    status = 400
    type = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        status: int | None = None,
        keep_changes: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        if status is not None:
            self.status = status
        self.keep_changes = keep_changes
        self.extra = dict(extra or {})

    def to_json(self) -> dict[str, Any]:
        # Stripe leaves out what does not apply (no "code": null).
        body: dict[str, Any] = {key: value for key, value in (
            ("type", self.type), ("code", self.code), ("decline_code", self.decline_code),
            ("message", self.message), ("param", self.param)) if value is not None}
        if self.code:
            body["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        body.update(self.extra)
        return {"error": body}


class InvalidRequest(StripeError):
    status = 400
    type = "invalid_request_error"


class AuthenticationFailed(StripeError):
    status = 401
    type = "invalid_request_error"


class ResourceMissing(InvalidRequest):
    status = 404

    def __init__(self, kind: str, object_id: str, param: str | None = "id") -> None:
        super().__init__(f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


class CardError(StripeError):
    status = 402
    type = "card_error"


class IdempotencyError(StripeError):
    status = 400
    type = "idempotency_error"


class ApiError(StripeError):
    status = 500
    type = "api_error"


def missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required param: {param}.", code="parameter_missing", param=param)


def not_supported(param: str, detail: str = "") -> InvalidRequest:
    """A parameter (or value) Stripe accepts that the sandbox does not implement: refused, never ignored."""
    return InvalidRequest(f"The Stripe sandbox does not support {param}{detail} (Stripe accepts it; "
                          "see sandbox/README.md for what the sandbox implements).", param=param)


def invalid(param: str, message: str, code: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, code=code, param=param)

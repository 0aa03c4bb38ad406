"""The project's own errors. Callers of the gateway never see a ``stripe`` exception."""
from __future__ import annotations


class BillingError(Exception):
    """Base of every error the billing module raises on purpose."""


class GatewayError(BillingError):
    """Stripe (or the sandbox) refused or failed a call."""

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None,
                 request_id: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.request_id = request_id


class CardDeclined(GatewayError):
    """The card was declined; ``decline_code`` says why (insufficient_funds, generic_decline...)."""

    def __init__(self, message: str, *, decline_code: str | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.decline_code = decline_code


class InvalidRequest(GatewayError):
    """Stripe refused the parameters; a bug on our side or a state that changed meanwhile."""

    def __init__(self, message: str, *, param: str | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.param = param


class NotFound(InvalidRequest):
    """The object does not exist in this Stripe account (or this mode)."""


class IdempotencyConflict(GatewayError):
    """The same idempotency key was already used with other parameters: the action was already attempted."""


class GatewayUnavailable(GatewayError):
    """Stripe could not be reached or answered 5xx/429 after our retries. Nothing can be assumed done."""


class PlanChangeRefused(BillingError):
    """A plan change that the rules refuse (same plan, canceled subscription, preview mismatch...)."""


class ChargeOutcomeUnknown(GatewayUnavailable):
    """A charging call was sent and no answer came back: Stripe may or may not have charged.

    Never tell the customer that nothing was charged; the attempt's idempotency key settles it."""

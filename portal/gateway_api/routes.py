"""POST /billing/tokenize, /authorizations, /captures, /refunds (and GET /refunds/<id>), GET /openapi.json.

Errors: ``{"error": {"code", "message", "reason", ...}}``; a 400 adds ``fields``
(one message per bad field), a 402 ``decline_code``, a 502 ``reference`` (the
provider's own error is logged on a line carrying that reference).
"""
from __future__ import annotations

import logging
import uuid
from typing import Optional

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select

from billing import control, refunds
from billing import gateway_api as api
from billing.audit import Origin
from billing.db import insert_or_load
from billing.errors import CardDeclined, GatewayError, InvalidRequest
from billing.gateway_api import (
    Answer,
    Fields,
    IdempotencyInProgress,
    IdempotencyMismatch,
    Invalid,
)
from billing.models import (
    GatewayAuthorization,
    GatewayCapture,
    GatewayToken,
    RefundRequest,
)
from billing.money import Money
from portal.extensions import db
from portal.errors import error_body, json_error
from portal.gateway_api.auth import caller, service_key_required
from portal.gateway_api.openapi import document
from portal.payments import gateway
from portal.request_context import request_id

log = logging.getLogger(__name__)
bp = Blueprint("gateway_api", __name__, url_prefix="/billing")

CARD_NUMBER_LENGTHS = range(12, 20)


class UnknownObject(Exception):
    """404: no such object for this key's app (another app's object looks the same)."""


def payment_gateways() -> set[str]:
    """Names a request may give in ``gateway``: Stripe, and the sandbox when that is what runs."""
    return {"stripe", "sandbox"} if gateway().sandbox else {"stripe"}


def _answer(answer: Answer):
    return jsonify(answer.body), answer.status


def provider_failure(error: BaseException) -> Answer:
    """502 with our own reference; the provider's words stay in the log line carrying it."""
    reference = f"gwerr_{uuid.uuid4().hex[:20]}"
    details = (f"{type(error).__name__}: {getattr(error, 'message', error)} code={getattr(error, 'code', None)} "
               f"http_status={getattr(error, 'http_status', None)} provider_request={getattr(error, 'request_id', None)}")
    log.error("gateway provider failure reference=%s request=%s %s", reference, request_id(), details)
    return Answer(502, error_body(502, "The payment provider failed; nothing can be assumed done. Retry with the "
                                       "same idempotency_key, or quote the reference.", "provider_error",
                                  reference=reference))


def declined(code: Optional[str], message: str) -> Answer:
    return Answer(402, error_body(402, message, "card_declined", decline_code=code or "card_declined"))


def _body() -> Fields:
    return Fields(request.get_json(silent=True))


def _gateway_name(fields: Fields) -> Optional[str]:
    name = fields.text("gateway", max_length=32)
    if name is not None and name not in payment_gateways():
        raise UnknownObject(f"Unknown gateway {name!r}.")
    return name


def _idempotency_key(fields: Fields) -> Optional[str]:
    return fields.text("idempotency_key", max_length=api.MAX_KEY_LENGTH)


def _run(operation: str, key: str, work):
    """Run ``work`` once per idempotency key (see billing.gateway_api.run_idempotent)."""
    who = caller()
    answer = api.run_idempotent(
        db.session, service_key_id=who.key_id, operation=operation, key=key,
        request_hash=api.fingerprint(current_app.config["SECRET_KEY"], request.get_json(silent=True)),
        work=work, on_provider_failure=provider_failure, provider_errors=(GatewayError,))
    return _answer(answer)


@bp.errorhandler(Invalid)
def _invalid(error: Invalid):
    return json_error(400, "The request is not valid.", "invalid_request", fields=error.fields)


@bp.errorhandler(UnknownObject)
def _unknown(error: UnknownObject):
    return json_error(404, str(error), "not_found")


@bp.errorhandler(IdempotencyMismatch)
def _mismatch(error: IdempotencyMismatch):
    return json_error(409, str(error), "idempotency_key_reused")


@bp.errorhandler(IdempotencyInProgress)
def _in_progress(error: IdempotencyInProgress):
    return json_error(409, str(error), "idempotency_key_in_use")


# ---------------------------------------------------------------- tokenize


@bp.post("/tokenize")
@service_key_required("tokenize")
def tokenize():
    """Card data in, a masked token out. The PAN and CVV go to the gateway and nowhere else."""
    if not (gateway().sandbox or current_app.config.get("BILLING_ALLOW_RAW_CARD_API")):
        return json_error(403, "Raw card data is not accepted here (BILLING_ALLOW_RAW_CARD_API is off); use "
                               "Stripe.js or Checkout to tokenize cards.", "raw_card_api_disabled")
    fields = _body()
    name = _gateway_name(fields)
    card = fields.body.get("card")
    if not isinstance(card, dict):
        fields.fail("card", "Send the card as an object: number, exp_month, exp_year, cvc.")
        card = {}
    card_fields = Fields(card)
    raw_number = card.get("number")
    number = "".join(raw_number.split()).replace("-", "") if isinstance(raw_number, str) else ""
    if not number.isdigit() or len(number) not in CARD_NUMBER_LENGTHS:
        fields.fail("card.number", "A card number has 12 to 19 digits.")
    exp_month = card_fields.integer("exp_month", 1, 12)
    exp_year = card_fields.integer("exp_year", 2000, 2100)
    cvc = card.get("cvc")
    if cvc is not None and not (isinstance(cvc, str) and cvc.isdigit() and len(cvc) in (3, 4)):
        fields.fail("card.cvc", "A CVC has 3 or 4 digits.")
    for field_name, message in card_fields.errors.items():
        fields.fail(f"card.{field_name}", message)
    fields.check()
    who = caller()
    try:
        card_out = gateway().tokenize_card(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc,
                                           attempt=request_id())
    except CardDeclined as error:
        return _answer(declined(error.decline_code or error.code, error.message))
    except InvalidRequest as error:
        field_name = f"card.{(error.param or 'number').removeprefix('card[').rstrip(']')}"
        raise Invalid({field_name: error.message}) from None
    except GatewayError as error:
        return _answer(provider_failure(error))
    token = GatewayToken(app_id=who.app_id, gateway=name, token_reference=card_out.payment_method_id,
                         brand=card_out.brand, last4=card_out.last4, exp_month=card_out.exp_month or exp_month,
                         exp_year=card_out.exp_year or exp_year)
    db.session.add(token)
    db.session.commit()
    return jsonify(api.token_json(token)), 201


# ---------------------------------------------------------------- authorizations


@bp.post("/authorizations")
@service_key_required("authorize")
def authorize():
    """Hold an amount on a tokenized card (manual capture), or charge it at once with ``capture: true``."""
    fields = _body()
    name = _gateway_name(fields)
    reference = fields.text("token_reference")
    currency = fields.currency()
    money = fields.money(currency)
    capture = fields.boolean("capture", False)
    metadata = fields.metadata()
    key = _idempotency_key(fields)
    fields.check()
    who = caller()
    token = db.session.scalar(select(GatewayToken).where(
        GatewayToken.token_reference == reference, GatewayToken.app_id == who.app_id, GatewayToken.gateway == name))
    if token is None:
        raise UnknownObject("No such token_reference.")
    token_id, payment_method = token.id, token.token_reference
    control.refuse_if_paused(db.session, who.app_id)
    db.session.commit()

    def work() -> Answer:
        try:
            intent = gateway().authorize(money, payment_method_id=payment_method, capture=capture,
                                         reference=f"app:{who.app_id}:key:{key}",
                                         metadata={**metadata, "kernel_gateway_app": str(who.app_id)})
        except CardDeclined as error:
            return declined(error.decline_code or error.code, error.message)
        if intent.status not in ("requires_capture", "succeeded"):
            return declined(intent.last_error_code or "authentication_required",
                            "The card needs the holder's authentication, which a server-to-server call cannot give.")
        row = GatewayAuthorization(public_id=api.new_public_id("auth"), app_id=who.app_id, gateway=name,
                                   token_id=token_id, stripe_payment_intent_id=intent.id, amount=money.amount,
                                   currency=money.currency, status="approved", metadata_=metadata)
        db.session.add(row)
        db.session.flush()
        captured = None
        if intent.status == "succeeded":
            captured = GatewayCapture(public_id=api.new_public_id("cap"), app_id=who.app_id, authorization_id=row.id,
                                      amount=intent.amount_received or money.amount, currency=money.currency)
            row.status = "captured"
            db.session.add(captured)
            db.session.flush()
        return Answer(201, api.authorization_json(row, captured))

    return _run("authorize", key, work)


# ---------------------------------------------------------------- captures


def _authorization(public_id: Optional[str]) -> GatewayAuthorization:
    row = db.session.scalar(select(GatewayAuthorization).where(GatewayAuthorization.public_id == public_id,
                                                               GatewayAuthorization.app_id == caller().app_id))
    if row is None:
        raise UnknownObject("No such authorization.")
    return row


@bp.post("/captures")
@service_key_required("capture")
def capture():
    """Capture an approved authorization, all of it or less, once."""
    fields = _body()
    authorization_id = fields.text("authorization_id", max_length=40)
    currency = fields.currency(required="amount" in fields.body)
    money = fields.money(currency, required=False)
    key = _idempotency_key(fields)
    fields.check()
    row = _authorization(authorization_id)
    existing = db.session.scalar(select(GatewayCapture).where(GatewayCapture.authorization_id == row.id))
    if money is not None and money.currency != row.currency:
        raise Invalid({"currency": f"The authorization is in {row.currency}."})
    if money is not None and money.amount > row.amount:
        raise Invalid({"amount": f"At most {Money(row.amount, row.currency).to_decimal_string()} was authorized."})
    auth_id, intent_id, authorized = row.id, row.stripe_payment_intent_id, Money(row.amount, row.currency)
    who = caller()
    control.refuse_if_paused(db.session, who.app_id)
    db.session.commit()

    def work() -> Answer:
        if existing is not None:
            return Answer(400, error_body(400, "Already captured.", "already_captured",
                                          fields={"authorization_id": "This authorization was already captured."}))
        try:
            intent = gateway().capture_payment_intent(intent_id, money or authorized)
        except InvalidRequest as error:
            return Answer(400, error_body(400, error.message, "not_capturable",
                                          fields={"authorization_id": error.message}))
        captured = GatewayCapture(public_id=api.new_public_id("cap"), app_id=who.app_id, authorization_id=auth_id,
                                  amount=intent.amount_received or (money or authorized).amount,
                                  currency=authorized.currency)
        # Captured meanwhile under another idempotency key: Stripe did it once, keep that row.
        captured, _ = insert_or_load(db.session, captured,
                                     select(GatewayCapture).where(GatewayCapture.authorization_id == auth_id))
        db.session.get(GatewayAuthorization, auth_id).status = "captured"
        return Answer(201, api.capture_json(captured))

    return _run("capture", key, work)


# ---------------------------------------------------------------- refunds


@bp.post("/refunds")
@service_key_required("refund")
def refund():
    """Ask for a refund of a capture; it waits for a superadmin's approval above the threshold (202)."""
    fields = _body()
    capture_id = fields.text("capture_id", max_length=40)
    currency = fields.currency(required="amount" in fields.body)
    money = fields.money(currency, required=False)
    reason = fields.text("reason", max_length=2000)
    key = _idempotency_key(fields)
    fields.check()
    who = caller()
    target = db.session.scalar(select(GatewayCapture).where(GatewayCapture.public_id == capture_id,
                                                            GatewayCapture.app_id == who.app_id))
    if target is None:
        raise UnknownObject("No such capture.")
    target_id = target.id
    db.session.commit()
    origin = Origin(actor="service_key", correlation_id=request_id())

    def work() -> Answer:
        try:
            row = refunds.request_refund(db.session, capture_id=target_id, amount=money, reason=reason or "",
                                         origin=origin, requested_by_key_id=who.key_id,
                                         approval_above=current_app.config.get("BILLING_REFUND_APPROVAL_ABOVE", 0))
        except refunds.RefundRefused as refused:
            raise Invalid({refused.field: refused.message}) from None
        row_id = row.id
        db.session.commit()
        try:
            refunds.execute(db.session, gateway(), row_id, origin=origin,
                            smtp_configured=bool(current_app.config.get("SMTP_URL")))
        except GatewayError as error:  # unknown outcome: the request stays executing, retried from the admin queue
            log.warning("refund %s left executing after a provider failure: %s", row_id, error.message)
        row = db.session.get(RefundRequest, row_id)
        # 201: the request reached its end (succeeded, or refused by Stripe); 202: it waits (approval, retry).
        status = 201 if row.status.value in ("succeeded", "failed") else 202
        return Answer(status, api.refund_json(row))

    return _run("refund", key, work)


@bp.get("/refunds/<refund_id>")
@service_key_required("refund")
def refund_status(refund_id: str):
    """Where a refund request stands (pending approval, executing, succeeded, refused, failed)."""
    row = db.session.scalar(select(RefundRequest).where(RefundRequest.public_id == refund_id,
                                                        RefundRequest.app_id == caller().app_id))
    if row is None:
        raise UnknownObject("No such refund.")
    return jsonify(api.refund_json(row))


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document of the gateway API."""
    return jsonify(document())



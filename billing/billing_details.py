"""An app's billing details: saved here, then sent to its Stripe customer.

Saving commits first (the details and their audit entry), then calls Stripe with no transaction
open: the customer's name (the legal name), e-mail and address are updated under a key named by
the audit entry of the edit, and its tax id is replaced (the new one added, any other Brazilian
one removed). If Stripe cannot be reached the details stay saved with ``synced_at`` empty; the
next save, or the customer's creation at the first checkout, sends them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from billing import audit, clock
from billing.actions import owner_action
from billing.audit import Origin
from billing.errors import GatewayError
from billing.gateway import StripeGateway
from billing.models import App, AppBillingDetails
from billing.tax_ids import TaxId, TaxIdKind

log = logging.getLogger(__name__)

BRAZILIAN_STATES = ("AC", "AL", "AP", "AM", "BA", "CE", "DF", "ES", "GO", "MA", "MT", "MS", "MG", "PA", "PB", "PR",
                    "PE", "PI", "RJ", "RN", "RS", "RO", "RR", "SC", "SP", "SE", "TO")


@dataclass(frozen=True)
class BillingDetailsInput:
    """What the owner entered, already checked (the form: CPF/CNPJ by ``billing.tax_ids``, CEP, UF)."""

    legal_name: str
    tax_id: TaxId
    email: Optional[str]
    postal_code: str  # 8 digits
    street: str
    number: str
    complement: Optional[str]
    district: str
    city: str
    state: str  # UF


# Built once: the billing page shows them on every answer, and ``Session.get`` builds its statement and cache key
# again on each call that misses the identity map (8% of that page's CPU).
_OF_APP = select(AppBillingDetails).where(AppBillingDetails.app_id == bindparam("app_id"))


def details_of(session: Session, app_id: int) -> Optional[AppBillingDetails]:
    """The app's billing details, or None when the owner has not entered any."""
    return session.scalar(_OF_APP, {"app_id": app_id})


def stripe_address(details: AppBillingDetails) -> dict[str, Optional[str]]:
    """Stripe's address keys from a Brazilian address: street and number on line 1, complement and district on 2."""
    line2 = " - ".join(part for part in (details.complement, details.district) if part)
    return {"line1": f"{details.street}, {details.number}", "line2": line2 or None, "city": details.city,
            "state": details.state, "postal_code": f"{details.postal_code[:5]}-{details.postal_code[5:]}",
            "country": "BR"}


def stripe_tax_id(details: Optional[AppBillingDetails]) -> Optional[tuple[str, str]]:
    return (details.tax_id_kind, details.tax_id) if details else None


def save_billing_details(session: Session, gateway: StripeGateway, app: App, given: BillingDetailsInput, *,
                         origin: Origin) -> AppBillingDetails:
    """Save ``given`` for ``app`` (commits), then send them to its Stripe customer if it has one.

    Claimed as the app's one billing action in flight (``billing.actions``), so a checkout creating the
    customer at the same moment sends either the old details or these, never a mix, and ``synced_at`` is
    true of what Stripe holds."""
    with owner_action(session, app.id, "billing_details", origin):
        details = details_of(session, app.id)
        before = _picture(details, app) if details else None
        if details is None:
            details = AppBillingDetails(app_id=app.id)
            session.add(details)
        details.legal_name, details.tax_id_kind, details.tax_id = given.legal_name, given.tax_id.kind.value, \
            given.tax_id.digits
        details.postal_code, details.street, details.number = given.postal_code, given.street, given.number
        details.complement, details.district, details.city, details.state = given.complement, given.district, \
            given.city, given.state
        app.billing_email = given.email
        details.synced_at = None
        entry = audit.record(session, action="billing_details.saved", object_type="app", object_id=app.id,
                             app_id=app.id, before=before, after=_picture(details, app), origin=origin)
        session.commit()
        if app.stripe_customer_id:
            push_to_stripe(session, gateway, app, details, change=f"audit:{entry.id}")
        return details


def push_to_stripe(session: Session, gateway: StripeGateway, app: App, details: AppBillingDetails, *,
                   change: str) -> bool:
    """Send the saved details to the app's Stripe customer; False (logged) when Stripe could not take them."""
    customer_id = app.stripe_customer_id
    assert customer_id is not None
    name, email, address = details.legal_name, app.billing_email, stripe_address(details)
    kind, value = details.tax_id_kind, details.tax_id
    session.commit()  # nothing stays open while Stripe is called
    try:
        gateway.update_billing_details(customer_id, name=name, email=email, address=address, change=change)
        existing = gateway.list_tax_ids(customer_id)
        if not any(k == kind and v == value for _, k, v in existing):
            gateway.add_tax_id(customer_id, kind, value, change=change)
        for tax_id, k, v in existing:  # the previous CPF or CNPJ goes; a tax id of another country stays
            if k in {TaxIdKind.CPF.value, TaxIdKind.CNPJ.value} and (k, v) != (kind, value):
                gateway.delete_tax_id(customer_id, tax_id)
    except GatewayError as error:
        log.warning("billing details of app %s not sent to Stripe: %s", app.id, error.message)
        return False
    details.synced_at = clock.now()
    session.commit()
    return True


def _picture(details: AppBillingDetails, app: App) -> dict:
    return {"legal_name": details.legal_name, "tax_id_kind": details.tax_id_kind, "tax_id": details.tax_id,
            "email": app.billing_email, "postal_code": details.postal_code, "street": details.street,
            "number": details.number, "complement": details.complement, "district": details.district,
            "city": details.city, "state": details.state}

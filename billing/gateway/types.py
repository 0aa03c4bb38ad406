"""Plain values for the Stripe objects the kernel reads.

The gateway and the webhook handlers both turn Stripe's JSON (a dict, from the
SDK's ``to_dict()`` or from an event payload) into these, so the rest of the code
never depends on where a field sits in a given API version: the current period on
the subscription item, an invoice's subscription under ``parent``...
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Generic, Iterator, Mapping, Optional, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

# The sandbox serves its hosted pages over plain HTTP on this machine; anything else must be HTTPS.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def ts(value: int | None) -> Optional[datetime]:
    """A Stripe unix timestamp as an aware UTC datetime."""
    return None if value is None else datetime.fromtimestamp(int(value), tz=timezone.utc)


def object_id(value: Any) -> Optional[str]:
    """An id from a field that holds either the id or the expanded object."""
    if value is None or isinstance(value, str):
        return value
    return value.get("id")


def link(value: Any) -> Optional[str]:
    """A URL from Stripe that we may render as a link or redirect a browser to, or None.

    Only ``https:`` (and ``http:`` on loopback, for the sandbox): a signed payload can
    still carry ``javascript:`` or ``data:``, and it must never reach a page.
    """
    if not isinstance(value, str) or not value or value != value.strip() or any(
            ord(c) < 33 or c == "\\" for c in value):
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return None
    if not host or parts.username is not None or parts.password is not None:
        return None
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return value
    return None


def _currency(value: str | None) -> str:
    return (value or "").upper()


@dataclass(frozen=True)
class Card:
    payment_method_id: str
    brand: str
    last4: str
    exp_month: Optional[int] = None
    exp_year: Optional[int] = None

    @classmethod
    def from_stripe(cls, pm: Mapping[str, Any]) -> "Card":
        card = pm.get("card") or {}
        return cls(pm["id"], card.get("brand") or "", card.get("last4") or "", card.get("exp_month"),
                   card.get("exp_year"))


@dataclass(frozen=True)
class Customer:
    id: str
    email: Optional[str]
    name: Optional[str]
    default_payment_method: Optional[str]
    metadata: dict[str, str]
    livemode: bool = False
    preferred_locales: tuple[str, ...] = ()

    @classmethod
    def from_stripe(cls, data: Mapping[str, Any]) -> "Customer":
        settings = data.get("invoice_settings") or {}
        return cls(
            id=data["id"],
            email=data.get("email"),
            name=data.get("name"),
            default_payment_method=object_id(settings.get("default_payment_method")),
            metadata=dict(data.get("metadata") or {}),
            livemode=bool(data.get("livemode")),
            preferred_locales=tuple(data.get("preferred_locales") or ()),
        )


@dataclass(frozen=True)
class Subscription:
    id: str
    customer: str
    status: str
    item_id: Optional[str]
    price_id: Optional[str]
    amount: Optional[int]
    currency: str
    current_period_start: Optional[datetime]
    current_period_end: Optional[datetime]
    cancel_at_period_end: bool
    canceled_at: Optional[datetime]
    trial_end: Optional[datetime]
    default_payment_method: Optional[str]
    latest_invoice: Optional[str]
    schedule: Optional[str]
    metadata: dict[str, str]
    created: int
    livemode: bool = False

    @classmethod
    def from_stripe(cls, data: Mapping[str, Any]) -> "Subscription":
        items = (data.get("items") or {}).get("data") or []
        item = items[0] if items else {}
        price = item.get("price") or {}
        return cls(
            id=data["id"],
            customer=object_id(data.get("customer")) or "",
            status=data["status"],
            item_id=item.get("id"),
            price_id=object_id(price) if price else None,
            amount=price.get("unit_amount") if isinstance(price, Mapping) else None,
            currency=_currency(data.get("currency") or (price.get("currency") if isinstance(price, Mapping) else None)),
            current_period_start=ts(item.get("current_period_start")),
            current_period_end=ts(item.get("current_period_end")),
            cancel_at_period_end=bool(data.get("cancel_at_period_end")),
            canceled_at=ts(data.get("canceled_at")),
            trial_end=ts(data.get("trial_end")),
            default_payment_method=object_id(data.get("default_payment_method")),
            latest_invoice=object_id(data.get("latest_invoice")),
            schedule=object_id(data.get("schedule")),
            metadata=dict(data.get("metadata") or {}),
            created=int(data.get("created") or 0),
            livemode=bool(data.get("livemode")),
        )


@dataclass(frozen=True)
class SchedulePhase:
    price_id: Optional[str]
    start: Optional[datetime]
    end: Optional[datetime]


@dataclass(frozen=True)
class SubscriptionSchedule:
    id: str
    status: str
    subscription: Optional[str]
    phases: tuple[SchedulePhase, ...]

    @classmethod
    def from_stripe(cls, data: Mapping[str, Any]) -> "SubscriptionSchedule":
        phases = []
        for phase in data.get("phases") or []:
            items = phase.get("items") or []
            price = object_id(items[0].get("price")) if items else None
            phases.append(SchedulePhase(price, ts(phase.get("start_date")), ts(phase.get("end_date"))))
        return cls(data["id"], data.get("status") or "", object_id(data.get("subscription")), tuple(phases))


@dataclass(frozen=True)
class InvoiceLine:
    amount: int
    description: str
    proration: bool
    price_id: Optional[str]
    period_start: Optional[datetime]
    period_end: Optional[datetime]

    @classmethod
    def from_stripe(cls, data: Mapping[str, Any]) -> "InvoiceLine":
        parent = data.get("parent") or {}
        details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
        pricing = (data.get("pricing") or {}).get("price_details") or {}
        period = data.get("period") or {}
        return cls(
            amount=int(data["amount"]),
            description=data.get("description") or "",
            proration=bool(details.get("proration")),
            price_id=object_id(pricing.get("price")),
            period_start=ts(period.get("start")),
            period_end=ts(period.get("end")),
        )


@dataclass(frozen=True)
class BilledTo:
    """Who an invoice is made out to, as Stripe copied it from the customer (name, e-mail, address, tax ids)."""

    name: Optional[str]
    email: Optional[str]
    address_lines: tuple[str, ...]
    tax_ids: tuple[tuple[str, str], ...]  # (type, value)

    @classmethod
    def from_stripe(cls, data: Mapping[str, Any]) -> Optional["BilledTo"]:
        address = data.get("customer_address") or {}
        city = " - ".join(part for part in (address.get("city"), address.get("state")) if part)
        lines = tuple(part for part in (address.get("line1"), address.get("line2"), city,
                                        address.get("postal_code")) if part)
        tax_ids = tuple((t.get("type") or "", t.get("value") or "") for t in data.get("customer_tax_ids") or [])
        if not (data.get("customer_name") or lines or tax_ids):
            return None
        return cls(data.get("customer_name"), data.get("customer_email"), lines, tax_ids)


@dataclass(frozen=True)
class Invoice:
    id: Optional[str]  # None for a preview
    number: Optional[str]
    customer: str
    subscription: Optional[str]
    status: Optional[str]
    billing_reason: Optional[str]
    amount_due: int
    amount_paid: int
    amount_remaining: int
    total: int
    currency: str
    period_start: Optional[datetime]
    period_end: Optional[datetime]
    hosted_invoice_url: Optional[str]
    invoice_pdf: Optional[str]
    attempt_count: int
    paid_at: Optional[datetime]
    created: int
    lines: tuple[InvoiceLine, ...] = field(default=())
    livemode: bool = False
    payment_intent_ids: tuple[str, ...] = field(default=())
    default_payment_method: Optional[str] = None
    billed_to: Optional["BilledTo"] = None

    @classmethod
    def from_stripe(cls, data: Mapping[str, Any]) -> "Invoice":
        parent = data.get("parent") or {}
        details = parent.get("subscription_details") or {}
        transitions = data.get("status_transitions") or {}
        invoice_id = data.get("id")
        return cls(
            id=invoice_id if invoice_id and invoice_id.startswith("in_") else None,
            number=data.get("number"),
            customer=object_id(data.get("customer")) or "",
            subscription=object_id(details.get("subscription")),
            status=data.get("status"),
            billing_reason=data.get("billing_reason"),
            amount_due=int(data.get("amount_due") or 0),
            amount_paid=int(data.get("amount_paid") or 0),
            amount_remaining=int(data.get("amount_remaining") or 0),
            total=int(data.get("total") or 0),
            currency=_currency(data.get("currency")),
            period_start=ts(data.get("period_start")),
            period_end=ts(data.get("period_end")),
            hosted_invoice_url=link(data.get("hosted_invoice_url")),
            invoice_pdf=link(data.get("invoice_pdf")),
            attempt_count=int(data.get("attempt_count") or 0),
            paid_at=ts(transitions.get("paid_at")),
            created=int(data.get("created") or 0),
            lines=tuple(InvoiceLine.from_stripe(line) for line in (data.get("lines") or {}).get("data") or []),
            livemode=bool(data.get("livemode")),
            payment_intent_ids=tuple(
                pi for pi in (object_id((p.get("payment") or {}).get("payment_intent"))
                              for p in (data.get("payments") or {}).get("data") or []) if pi
            ),
            default_payment_method=object_id(data.get("default_payment_method")),
            billed_to=BilledTo.from_stripe(data),
        )

    @property
    def proration_total(self) -> int:
        return sum(line.amount for line in self.lines if line.proration)


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: Optional[str]
    mode: str
    status: str
    payment_status: str
    customer: Optional[str]
    subscription: Optional[str]
    setup_intent: Optional[str]
    setup_payment_method: Optional[str]  # only when setup_intent was expanded
    client_reference_id: Optional[str]
    metadata: dict[str, str]
    livemode: bool = False

    @classmethod
    def from_stripe(cls, data: Mapping[str, Any]) -> "CheckoutSession":
        setup_intent = data.get("setup_intent")
        payment_method = None
        if isinstance(setup_intent, Mapping):
            payment_method = object_id(setup_intent.get("payment_method"))
        return cls(
            id=data["id"],
            url=link(data.get("url")),
            mode=data.get("mode") or "",
            status=data.get("status") or "",
            payment_status=data.get("payment_status") or "",
            customer=object_id(data.get("customer")),
            subscription=object_id(data.get("subscription")),
            setup_intent=object_id(setup_intent),
            setup_payment_method=payment_method,
            client_reference_id=data.get("client_reference_id"),
            metadata=dict(data.get("metadata") or {}),
            livemode=bool(data.get("livemode")),
        )

    @property
    def is_complete(self) -> bool:
        return self.status == "complete"


@dataclass(frozen=True)
class PaymentIntent:
    id: str
    status: str
    amount: int
    amount_capturable: int
    amount_received: int
    currency: str
    customer: Optional[str]
    payment_method: Optional[str]
    capture_method: str
    latest_charge: Optional[str]
    last_error_code: Optional[str]
    metadata: dict[str, str]

    @classmethod
    def from_stripe(cls, data: Mapping[str, Any]) -> "PaymentIntent":
        error = data.get("last_payment_error") or {}
        return cls(
            id=data["id"],
            status=data["status"],
            amount=int(data.get("amount") or 0),
            amount_capturable=int(data.get("amount_capturable") or 0),
            amount_received=int(data.get("amount_received") or 0),
            currency=_currency(data.get("currency")),
            customer=object_id(data.get("customer")),
            payment_method=object_id(data.get("payment_method")),
            capture_method=data.get("capture_method") or "automatic",
            latest_charge=object_id(data.get("latest_charge")),
            last_error_code=error.get("decline_code") or error.get("code"),
            metadata=dict(data.get("metadata") or {}),
        )


@dataclass(frozen=True)
class Refund:
    id: str
    status: str
    amount: int
    currency: str
    payment_intent: Optional[str]
    charge: Optional[str]

    @classmethod
    def from_stripe(cls, data: Mapping[str, Any]) -> "Refund":
        return cls(data["id"], data.get("status") or "", int(data["amount"]), _currency(data.get("currency")),
                   object_id(data.get("payment_intent")), object_id(data.get("charge")))


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a Stripe list; ``next_cursor`` feeds ``starting_after`` for the next one."""

    items: list[T]
    has_more: bool

    @property
    def next_cursor(self) -> Optional[str]:
        return getattr(self.items[-1], "id", None) if self.items and self.has_more else None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

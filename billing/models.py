"""The kernel's billing tables.

Table names follow the kernel's billing design. Constraints do the guarding:
unique Stripe ids, non-null money, one row per processed webhook event, one row
per dunning attempt. Money columns are integer minor units next to a currency code.
"""
from __future__ import annotations

import enum
import secrets
from datetime import date, datetime
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from billing import clock
from billing.db import Base, UTCDateTime
from billing.money import Money
from billing.states import ENDED_STATUSES, SubscriptionStatus, check_transition


def _utcnow() -> datetime:
    return clock.now()


def _enum(enum_class: type[enum.Enum], name: str, length: int = 32) -> Enum:
    """A portable enum column: stored as its string value, guarded by a CHECK constraint."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Role(enum.StrEnum):
    OWNER = "owner"
    SUPERADMIN = "superadmin"


class AppStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


app_owners = Table(
    "app_owners",
    Base.metadata,
    Column("app_id", ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)


class User(Base):
    """A person who signs in: an app owner or a superadmin.

    Implements the four attributes Flask-Login reads, without importing it.
    """

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lowercase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"), default=Role.OWNER)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    # What a session or remember-me cookie names instead of the id (Flask-Login's alternative id):
    # replacing it signs the user out of every browser at once (sign-out, password change, revocation).
    session_token: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: new_session_token())
    # The language the user reads the portal in (pt_BR, en): their notices, e-mails and Stripe's pages follow it.
    locale: Mapped[Optional[str]] = mapped_column(String(8))

    apps: Mapped[list["App"]] = relationship(
        secondary=app_owners, back_populates="owners", order_by="App.name"
    )

    @property
    def is_superadmin(self) -> bool:
        return self.role == Role.SUPERADMIN

    # Flask-Login's user protocol.
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return self.session_token

    def revoke_sessions(self) -> None:
        """Invalidate every session and remember-me cookie issued to this user so far."""
        self.session_token = new_session_token()


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


class App(Base):
    """A tenant: one app running on the kernel, billed through one Stripe customer."""

    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[AppStatus] = mapped_column(_enum(AppStatus, "app_status"), default=AppStatus.ACTIVE)
    paused_reason: Mapped[Optional[str]] = mapped_column(Text)
    paused_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    billing_email: Mapped[Optional[str]] = mapped_column(String(254))
    stripe_customer_id: Mapped[Optional[str]] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)

    owners: Mapped[list[User]] = relationship(secondary=app_owners, back_populates="apps")
    subscriptions: Mapped[list["AppSubscription"]] = relationship(
        back_populates="app", order_by="AppSubscription.id.desc()"
    )

    @property
    def current_subscription(self) -> Optional["AppSubscription"]:
        """The app's most recent subscription, whatever its status; None on the Free plan."""
        return self.subscriptions[0] if self.subscriptions else None

    def is_owned_by(self, user: User) -> bool:
        return any(owner.id == user.id for owner in self.owners)


class AppBillingDetails(Base):
    """Who an app's invoices are made out to: legal name, CPF or CNPJ, Brazilian address.

    The billing e-mail is ``App.billing_email`` (notices go to it too). Sent to the app's Stripe
    customer (name, address, tax id), which prints them on Stripe's invoices; ``synced_at`` is when
    Stripe last took these values (None: not yet, e.g. Stripe was down when they were saved).
    """

    __tablename__ = "app_billing_details"
    __table_args__ = (
        CheckConstraint("tax_id_kind IN ('br_cpf', 'br_cnpj')", name="tax_id_kind_known"),
        CheckConstraint("length(state) = 2", name="state_is_an_uf"),
        CheckConstraint("length(postal_code) = 8", name="postal_code_is_a_cep"),
    )

    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    tax_id_kind: Mapped[str] = mapped_column(String(16))  # Stripe's type: br_cpf or br_cnpj
    tax_id: Mapped[str] = mapped_column(String(14))  # digits only, check digits verified (billing/tax_ids.py)
    postal_code: Mapped[str] = mapped_column(String(8))  # CEP, digits only
    street: Mapped[str] = mapped_column(String(200))
    number: Mapped[str] = mapped_column(String(20))
    complement: Mapped[Optional[str]] = mapped_column(String(100))
    district: Mapped[str] = mapped_column(String(100))  # bairro
    city: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(2))  # UF
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow, onupdate=_utcnow)
    synced_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    app: Mapped[App] = relationship()


class KernelPlan(Base):
    """A plan the kernel sells; ``amount`` is the monthly price in minor units."""

    __tablename__ = "kernel_plans"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("length(currency) = 3", name="currency_iso"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    interval: Mapped[str] = mapped_column(String(16), default="month")
    trial_days: Mapped[int] = mapped_column(Integer, default=0)
    rank: Mapped[int] = mapped_column(Integer, default=0)  # orders plans: higher is an upgrade
    stripe_price_id: Mapped[Optional[str]] = mapped_column(String(255), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def price(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def is_free(self) -> bool:
        return self.amount == 0


# The partial unique index needs the rule as literal SQL; it is written from ENDED_STATUSES, not by hand.
LIVE_STATUSES_SQL = "status NOT IN ({})".format(", ".join(f"'{status.value}'" for status in ENDED_STATUSES))


class AppSubscription(Base):
    """One Stripe subscription of an app. A canceled one stays as history; a new checkout adds a row."""

    __tablename__ = "app_subscriptions"
    __table_args__ = (
        Index("ix_app_subscriptions_app_status", "app_id", "status"),
        # At most one live subscription per app: a second one would mean charging twice.
        Index("uq_app_subscriptions_one_live_per_app", "app_id", unique=True,
              sqlite_where=text(LIVE_STATUSES_SQL), postgresql_where=text(LIVE_STATUSES_SQL)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("kernel_plans.id"))
    status: Mapped[SubscriptionStatus] = mapped_column(_enum(SubscriptionStatus, "subscription_status"))
    stripe_customer_id: Mapped[str] = mapped_column(String(255))
    stripe_subscription_id: Mapped[str] = mapped_column(String(255), unique=True)
    payment_method_id: Mapped[Optional[str]] = mapped_column(String(255))
    card_brand: Mapped[Optional[str]] = mapped_column(String(32))
    card_last4: Mapped[Optional[str]] = mapped_column(String(4))
    current_period_start: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    current_period_end: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    trial_end: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    canceled_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    scheduled_plan_id: Mapped[Optional[int]] = mapped_column(ForeignKey("kernel_plans.id"))
    scheduled_change_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    stripe_schedule_id: Mapped[Optional[str]] = mapped_column(String(255), unique=True)
    # Unix time of the newest Stripe state applied; older events never overwrite newer state.
    stripe_watermark: Mapped[int] = mapped_column(BigInteger, default=0)
    # Wall-clock nanoseconds (time.time_ns()) when this row last took a new Stripe state: orders same-second
    # writes, since an answer Stripe gave before it may predate that state (billing.sync, docs/webhooks.md).
    stripe_synced_ns: Mapped[Optional[int]] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow, onupdate=_utcnow)

    app: Mapped[App] = relationship(back_populates="subscriptions")
    plan: Mapped[KernelPlan] = relationship(foreign_keys=[plan_id])
    scheduled_plan: Mapped[Optional[KernelPlan]] = relationship(foreign_keys=[scheduled_plan_id])

    @hybrid_property
    def is_live(self) -> bool:
        """Not over: the app is on this subscription's plan (in Python, and in SQL on the class or an alias)."""
        return not self.status.has_ended

    @is_live.inplace.expression
    @classmethod
    def _is_live_expression(cls) -> ColumnElement[bool]:
        return cls.status.not_in(ENDED_STATUSES)

    def move_to(self, target: SubscriptionStatus) -> SubscriptionStatus:
        """Change status through the state machine; returns the previous status."""
        target = SubscriptionStatus(target)
        check_transition(self.status, target)
        previous, self.status = self.status, target
        return previous


class InvoiceStatus(enum.StrEnum):
    """Stripe's invoice statuses."""

    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    UNCOLLECTIBLE = "uncollectible"
    VOID = "void"


# The one definition of an invoice still waiting for its money. Uncollectible is one: Stripe
# stops trying, but the owner still owes it and may pay it.
OPEN_INVOICE_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)


class DunningOutcome(enum.StrEnum):
    """How an invoice's dunning ended."""

    PAID = "paid"
    EXHAUSTED = "exhausted"  # the last retry failed: subscription canceled, app paused
    VOID = "void"  # voided in Stripe: nothing left to collect


class KernelInvoice(Base):
    """A Stripe invoice of an app, mirrored for listing, dunning and reconciliation."""

    __tablename__ = "kernel_invoices"
    __table_args__ = (
        CheckConstraint("amount_due >= 0", name="amount_due_not_negative"),
        CheckConstraint("amount_paid >= 0", name="amount_paid_not_negative"),
        CheckConstraint("length(currency) = 3", name="currency_iso"),
        Index("ix_kernel_invoices_app_created", "app_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"))
    subscription_id: Mapped[Optional[int]] = mapped_column(ForeignKey("app_subscriptions.id"), index=True)
    stripe_invoice_id: Mapped[str] = mapped_column(String(255), unique=True)
    number: Mapped[Optional[str]] = mapped_column(String(64))
    status: Mapped[InvoiceStatus] = mapped_column(_enum(InvoiceStatus, "invoice_status"))
    billing_reason: Mapped[Optional[str]] = mapped_column(String(64))
    amount_due: Mapped[int] = mapped_column(BigInteger, nullable=False)
    amount_paid: Mapped[int] = mapped_column(BigInteger, nullable=False)
    amount_remaining: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    period_start: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    period_end: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    hosted_invoice_url: Mapped[Optional[str]] = mapped_column(Text)
    invoice_pdf: Mapped[Optional[str]] = mapped_column(Text)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    paid_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    stripe_watermark: Mapped[int] = mapped_column(BigInteger, default=0)
    stripe_synced_ns: Mapped[Optional[int]] = mapped_column(BigInteger)  # as AppSubscription's
    # Dunning of this invoice ended (paid, voided, or retries exhausted): the dunning job stops looking at it.
    dunning_closed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    dunning_outcome: Mapped[Optional[DunningOutcome]] = mapped_column(_enum(DunningOutcome, "dunning_outcome"))

    app: Mapped[App] = relationship()
    subscription: Mapped[Optional[AppSubscription]] = relationship()
    payments: Mapped[list["KernelPayment"]] = relationship(back_populates="invoice")

    @property
    def total(self) -> Money:
        return Money(self.amount_due, self.currency)

    @hybrid_property
    def is_open(self) -> bool:
        """Still waiting for its money (in Python, and in SQL on the class)."""
        return self.status in OPEN_INVOICE_STATUSES

    @is_open.inplace.expression
    @classmethod
    def _is_open_expression(cls) -> ColumnElement[bool]:
        return cls.status.in_(OPEN_INVOICE_STATUSES)


class AttemptStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class KernelPaymentAttempt(Base):
    """One charge attempt on an invoice: the failed renewal (number 0) and each dunning retry.

    Unique per (invoice, attempt number), so running a dunning job twice can never
    make a second attempt for the same slot.
    """

    __tablename__ = "kernel_payment_attempts"
    __table_args__ = (UniqueConstraint("invoice_id", "attempt_number", name="uq_attempt_per_invoice"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    subscription_id: Mapped[Optional[int]] = mapped_column(ForeignKey("app_subscriptions.id"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("kernel_invoices.id"))
    attempt_number: Mapped[int] = mapped_column(Integer)
    status: Mapped[AttemptStatus] = mapped_column(_enum(AttemptStatus, "attempt_status"))
    scheduled_for: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    notified_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    attempted_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    failure_code: Mapped[Optional[str]] = mapped_column(String(64))
    failure_message: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)

    invoice: Mapped[KernelInvoice] = relationship()


class WebhookStatus(enum.StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


class ProcessedWebhook(Base):
    """Every verified Stripe event we received, exactly once (the event id is unique)."""

    __tablename__ = "processed_webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(128), index=True)
    object_id: Mapped[Optional[str]] = mapped_column(String(255), index=True)
    created: Mapped[int] = mapped_column(BigInteger)  # the event's own `created`, unix seconds
    livemode: Mapped[bool] = mapped_column(Boolean)
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[WebhookStatus] = mapped_column(
        _enum(WebhookStatus, "webhook_status"), default=WebhookStatus.RECEIVED, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    processed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)  # when it was applied (or ignored)
    # A failed event's next try (None: no retry left, a superadmin replays it).
    next_attempt_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class AuditLog(Base):
    """Who changed what, from what to what, when; ``correlation_id`` ties it to an event or request."""

    __tablename__ = "audit_logs"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(64))  # "user", "webhook", "job:dunning", "cli"
    app_id: Mapped[Optional[int]] = mapped_column(ForeignKey("apps.id"), index=True)
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[Optional[str]] = mapped_column(String(255))
    before: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    after: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    correlation_id: Mapped[Optional[str]] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow, index=True)

    actor_user: Mapped[Optional[User]] = relationship()
    app: Mapped[Optional[App]] = relationship()


class AlertSeverity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(Base):
    """Something a superadmin must look at: a failed payment, a divergence, a refused change."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[Optional[int]] = mapped_column(ForeignKey("apps.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    severity: Mapped[AlertSeverity] = mapped_column(_enum(AlertSeverity, "alert_severity"))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    # Raising the same alert twice (a retried job, a redelivered event) must not duplicate it.
    dedupe_key: Mapped[Optional[str]] = mapped_column(String(255), unique=True)
    resolved_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow, index=True)
    # Seen by a superadmin; an alert of a rule (billing/alert_rules.py) stays open until its condition clears.
    acknowledged_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))

    app: Mapped[Optional[App]] = relationship()
    acknowledged_by: Mapped[Optional[User]] = relationship(foreign_keys=[acknowledged_by_id])

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class CheckoutStatus(enum.StrEnum):
    OPEN = "open"
    COMPLETE = "complete"
    EXPIRED = "expired"


class CheckoutMode(enum.StrEnum):
    SUBSCRIPTION = "subscription"
    SETUP = "setup"  # saves a card, charges nothing


class KernelCheckoutSession(Base):
    """A Checkout Session the portal opened for an app: the success redirect is only honoured for these."""

    __tablename__ = "kernel_checkout_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    stripe_session_id: Mapped[str] = mapped_column(String(255), unique=True)
    mode: Mapped[CheckoutMode] = mapped_column(_enum(CheckoutMode, "checkout_mode", length=16))
    plan_id: Mapped[Optional[int]] = mapped_column(ForeignKey("kernel_plans.id"))
    status: Mapped[CheckoutStatus] = mapped_column(_enum(CheckoutStatus, "checkout_status"),
                                                   default=CheckoutStatus.OPEN)
    url: Mapped[Optional[str]] = mapped_column(Text)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    completed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    app: Mapped[App] = relationship()
    plan: Mapped[Optional[KernelPlan]] = relationship()


class PaymentStatus(enum.StrEnum):
    """Stripe's PaymentIntent statuses."""

    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    CANCELED = "canceled"
    SUCCEEDED = "succeeded"


class KernelPayment(Base):
    """Money received (or attempted) through one Stripe PaymentIntent: an invoice payment or a one-off charge."""

    __tablename__ = "kernel_payments"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount", name="refund_within_amount"),
        CheckConstraint("length(currency) = 3", name="currency_iso"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    invoice_id: Mapped[Optional[int]] = mapped_column(ForeignKey("kernel_invoices.id"), index=True)
    stripe_payment_intent_id: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_charge_id: Mapped[Optional[str]] = mapped_column(String(255), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[PaymentStatus] = mapped_column(_enum(PaymentStatus, "payment_status"))
    failure_code: Mapped[Optional[str]] = mapped_column(String(64))
    paid_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    stripe_watermark: Mapped[int] = mapped_column(BigInteger, default=0)

    app: Mapped[App] = relationship()
    invoice: Mapped[Optional[KernelInvoice]] = relationship(back_populates="payments")


class KernelRefund(Base):
    __tablename__ = "kernel_refunds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("length(currency) = 3", name="currency_iso"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    payment_id: Mapped[Optional[int]] = mapped_column(ForeignKey("kernel_payments.id"))
    stripe_refund_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow, index=True)


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # waiting to be sent by SMTP
    SENT = "sent"
    FAILED = "failed"
    STORED = "stored"  # no SMTP configured: kept here for the owner and superadmins to read


class OutboxMessage(Base):
    """A notice to an app owner (dunning, receipts); sent by SMTP when configured, readable in the portal always."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[Optional[int]] = mapped_column(ForeignKey("apps.id"), index=True)
    to_email: Mapped[str] = mapped_column(String(254))
    kind: Mapped[str] = mapped_column(String(64))
    # What happened, as values (amounts in minor units, dates in ISO 8601): the portal and the mailer write
    # the subject and body from a template of ``kind`` in the reader's language. Notices written before
    # templates existed have no data, only their fixed subject and body.
    data: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    subject: Mapped[Optional[str]] = mapped_column(String(255))
    body: Mapped[Optional[str]] = mapped_column(Text)
    # One notice per occasion (e.g. "dunning:in_123:retry:2:notice"), however often a job runs.
    dedupe_key: Mapped[Optional[str]] = mapped_column(String(255), unique=True)
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus, "outbox_status"))
    error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow, index=True)
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    app: Mapped[Optional[App]] = relationship()


class RunStatus(enum.StrEnum):
    """Where a job run or a reconciliation run stands."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobRun(Base):
    """One run of a scheduled or on-demand job. The unique key stops a second launch of the same run."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    run_key: Mapped[str] = mapped_column(String(255), unique=True)  # e.g. "dunning:2026-11-26"
    rq_job_id: Mapped[Optional[str]] = mapped_column(String(255))
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "job_run_status"))
    processed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    details: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    error: Mapped[Optional[str]] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class ReconciliationRun(Base):
    __tablename__ = "reconciliation_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    trigger: Mapped[str] = mapped_column(String(32))  # nightly, superadmin, cli
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "reconciliation_run_status"))
    subscriptions_checked: Mapped[int] = mapped_column(Integer, default=0)
    invoices_checked: Mapped[int] = mapped_column(Integer, default=0)
    divergence_count: Mapped[int] = mapped_column(Integer, default=0)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[Optional[str]] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow, index=True)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    divergences: Mapped[list["ReconciliationDivergence"]] = relationship(back_populates="run")


class DivergenceKind(enum.StrEnum):
    """What differs between Stripe and our tables."""

    STATUS = "status"
    PLAN = "plan"
    PERIOD = "period"
    AMOUNT = "amount"
    PAID = "paid"
    MISSING_LOCAL = "missing_local"  # in Stripe, not in our tables
    MISSING_STRIPE = "missing_stripe"  # in our tables, not in Stripe


class ReconciliationDivergence(Base):
    """One difference between Stripe and our tables, with both values; safe ones can be healed."""

    __tablename__ = "reconciliation_divergences"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_runs.id"), index=True)
    app_id: Mapped[Optional[int]] = mapped_column(ForeignKey("apps.id"), index=True)
    kind: Mapped[DivergenceKind] = mapped_column(_enum(DivergenceKind, "divergence_kind", length=64))
    object_type: Mapped[str] = mapped_column(String(32))  # subscription, invoice
    stripe_id: Mapped[Optional[str]] = mapped_column(String(255))
    local_value: Mapped[Optional[Any]] = mapped_column(JSON)
    stripe_value: Mapped[Optional[Any]] = mapped_column(JSON)
    healable: Mapped[bool] = mapped_column(Boolean, default=False)
    alert_id: Mapped[Optional[int]] = mapped_column(ForeignKey("alerts.id"))
    healed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    healed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)

    run: Mapped[ReconciliationRun] = relationship(back_populates="divergences")
    app: Mapped[Optional[App]] = relationship()


class ApiToken(Base):
    """A bearer token for the JSON API, acting as its user; only a hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists to tell tokens apart
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the token
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class MrrSnapshot(Base):
    """The money at one moment, per currency: MRR, paying subscriptions, churn and payment outcomes.

    Taken every hour (``jobs/snapshots.py``) so the "MRR down 20% in 24 h" alert has a
    figure from 24 hours ago; charts read the last snapshot of each day. One row per
    (hour, currency): a second run of the same hour changes nothing.
    """

    __tablename__ = "mrr_snapshots"
    __table_args__ = (
        UniqueConstraint("taken_at", "currency", name="uq_mrr_snapshot_per_hour"),
        CheckConstraint("mrr >= 0", name="mrr_not_negative"),
        CheckConstraint("length(currency) = 3", name="currency_iso"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # the hour it stands for, UTC
    day: Mapped[date] = mapped_column(Date, index=True)  # that hour's São Paulo calendar day
    currency: Mapped[str] = mapped_column(String(3))
    mrr: Mapped[int] = mapped_column(BigInteger)  # minor units per month
    active_count: Mapped[int] = mapped_column(Integer)  # subscriptions counted in the MRR
    # Churn over the 30 days before taken_at (docs/metrics.md): canceled ones among those live at its start.
    churn_base: Mapped[int] = mapped_column(Integer)
    churned_count: Mapped[int] = mapped_column(Integer)
    # Payment attempts of the 24 hours before taken_at.
    payments_succeeded: Mapped[int] = mapped_column(Integer)
    payments_failed: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)


class PaymentOutcome(Base):
    """One charge attempt as Stripe reported it, once (keyed by its charge): what failure rates count."""

    __tablename__ = "payment_outcomes"
    __table_args__ = (
        CheckConstraint("outcome IN ('succeeded', 'failed')", name="outcome_known"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("length(currency) = 3", name="currency_iso"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(255), unique=True)  # the charge id (one per attempt)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    stripe_payment_intent_id: Mapped[str] = mapped_column(String(255), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[Optional[str]] = mapped_column(String(64))  # Stripe's decline or error code
    plan_code: Mapped[Optional[str]] = mapped_column(String(32))  # the app's plan when it happened
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


# ---------------------------------------------------------------- Billing Gateway API (docs/gateway-api.md)


class ServiceKey(Base):
    """A key other services use on ``/billing/`` for one app; only its SHA-256 is stored, shown once."""

    __tablename__ = "service_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists to tell keys apart
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)  # the operations it may call: tokenize, authorize...
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))

    app: Mapped[App] = relationship()


class GatewayIdempotencyKey(Base):
    """One answer of the gateway API per (service key, operation, idempotency key).

    The row is claimed (inserted and committed) before the gateway is called, so a
    racing duplicate fails on the unique constraint instead of calling it twice.
    """

    __tablename__ = "gateway_idempotency_keys"
    __table_args__ = (UniqueConstraint("service_key_id", "operation", "key", name="uq_gateway_idempotency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_key_id: Mapped[int] = mapped_column(ForeignKey("service_keys.id"))
    operation: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))  # HMAC of the canonical body, never the body
    response_status: Mapped[Optional[int]] = mapped_column(Integer)  # null while the first request runs
    response_body: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow, index=True)
    completed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class GatewayIdempotencyConflict(Base):
    """Stripe refused a request of ours because its idempotency key was used before with other parameters.

    One row per refusal, written by ``billing.metrics.idempotency_conflict`` in a transaction of its own
    (the caller's may roll back), so the ``BillingGatewayIdempotency`` alert rule sees the refusals of every
    web and worker process."""

    __tablename__ = "gateway_idempotency_conflicts"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    request_id: Mapped[Optional[str]] = mapped_column(String(255))  # Stripe's, to find the request in its logs
    message: Mapped[Optional[str]] = mapped_column(String(500))


class GatewayToken(Base):
    """A card tokenized through the API: the gateway's reference and what may be shown, never PAN or CVV."""

    __tablename__ = "gateway_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    gateway: Mapped[str] = mapped_column(String(32))
    token_reference: Mapped[str] = mapped_column(String(255), unique=True)
    brand: Mapped[str] = mapped_column(String(32))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)


class GatewayAuthorization(Base):
    """A PaymentIntent made through the API; ``public_id`` is what clients see (``auth_...``)."""

    __tablename__ = "gateway_authorizations"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("length(currency) = 3", name="currency_iso"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    gateway: Mapped[str] = mapped_column(String(32))
    token_id: Mapped[int] = mapped_column(ForeignKey("gateway_tokens.id"))
    stripe_payment_intent_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    status: Mapped[str] = mapped_column(String(32))  # approved, captured, declined
    decline_code: Mapped[Optional[str]] = mapped_column(String(64))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)

    token: Mapped[GatewayToken] = relationship()


class GatewayCapture(Base):
    """The one capture of an authorization; refunds of it never sum above ``amount``."""

    __tablename__ = "gateway_captures"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount", name="refund_within_amount"),
        CheckConstraint("length(currency) = 3", name="currency_iso"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    authorization_id: Mapped[int] = mapped_column(ForeignKey("gateway_authorizations.id"), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)

    authorization: Mapped[GatewayAuthorization] = relationship()


class RefundStatus(enum.StrEnum):
    PENDING_APPROVAL = "pending_approval"
    EXECUTING = "executing"  # approved; Stripe is being (or must be again) asked
    SUCCEEDED = "succeeded"
    REFUSED = "refused"
    FAILED = "failed"  # Stripe refused it: nothing was refunded


class RefundRequest(Base):
    """A refund asked for by a superadmin or a service key, of an API capture or an invoice payment.

    Dual control: above the configured threshold it waits for a second, different
    superadmin. Requests not refused or failed reserve their amount, so together
    they never exceed what was captured.
    """

    __tablename__ = "refund_requests"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("length(currency) = 3", name="currency_iso"),
        CheckConstraint("(capture_id IS NULL) <> (payment_id IS NULL)", name="one_target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    capture_id: Mapped[Optional[int]] = mapped_column(ForeignKey("gateway_captures.id"), index=True)
    payment_id: Mapped[Optional[int]] = mapped_column(ForeignKey("kernel_payments.id"), index=True)
    stripe_payment_intent_id: Mapped[str] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[RefundStatus] = mapped_column(_enum(RefundStatus, "refund_status"), index=True)
    requested_by_user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    requested_by_key_id: Mapped[Optional[int]] = mapped_column(ForeignKey("service_keys.id"))
    decided_by_user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    decision_note: Mapped[Optional[str]] = mapped_column(Text)
    stripe_refund_id: Mapped[Optional[str]] = mapped_column(String(255), unique=True)
    failure: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow, index=True)
    executed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    app: Mapped[App] = relationship()
    capture: Mapped[Optional[GatewayCapture]] = relationship()
    payment: Mapped[Optional[KernelPayment]] = relationship()
    requested_by_user: Mapped[Optional[User]] = relationship(foreign_keys=[requested_by_user_id])
    requested_by_key: Mapped[Optional[ServiceKey]] = relationship()
    decided_by_user: Mapped[Optional[User]] = relationship(foreign_keys=[decided_by_user_id])

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)


class GatewayWebhookEvent(Base):
    """A signed event from a generic gateway on ``/billing/webhooks/<gateway>``, kept once per event id."""

    __tablename__ = "gateway_webhook_events"
    __table_args__ = (UniqueConstraint("gateway", "event_id", name="uq_gateway_event"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    gateway: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[Optional[str]] = mapped_column(String(128))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)


# ---------------------------------------------------------------- owner charges whose outcome must be known


class ChargeStatus(enum.StrEnum):
    PENDING = "pending"  # recorded, the charging call about to be made or in flight
    UNKNOWN = "unknown"  # the call was sent and no answer came back (timeout, connection cut)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # Stripe answered no, or the call was never sent: nothing was charged

    @property
    def is_open(self) -> bool:
        return self in (ChargeStatus.PENDING, ChargeStatus.UNKNOWN)


OPEN_CHARGES_SQL = "status IN ('pending', 'unknown')"


class ChargeAttempt(Base):
    """A charge an owner asked for (an upgrade, paying an open invoice), recorded and committed *before*
    Stripe is called, with the idempotency key the call uses and who asked; settled from Stripe's
    answer, a replay of the same key, or the webhook (``billing/charges.py``)."""

    __tablename__ = "charge_attempts"
    __table_args__ = (
        CheckConstraint("kind IN ('upgrade', 'invoice_payment')", name="kind_known"),
        # One charge in doubt per app at a time: a second one waits until the first is known.
        Index("uq_charge_attempts_one_open_per_app", "app_id", unique=True,
              sqlite_where=text(OPEN_CHARGES_SQL), postgresql_where=text(OPEN_CHARGES_SQL)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    target: Mapped[str] = mapped_column(String(255))  # the Stripe subscription or invoice charged
    status: Mapped[ChargeStatus] = mapped_column(_enum(ChargeStatus, "charge_status"), default=ChargeStatus.PENDING)
    requested_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    correlation_id: Mapped[Optional[str]] = mapped_column(String(128))
    details: Mapped[dict] = mapped_column(JSON, default=dict)  # what a replay of the same call needs
    stripe_invoice_id: Mapped[Optional[str]] = mapped_column(String(255))
    amount: Mapped[Optional[int]] = mapped_column(BigInteger)
    currency: Mapped[Optional[str]] = mapped_column(String(3))
    error: Mapped[Optional[str]] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    settled_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class OwnerActionClaim(Base):
    """An owner's action on an app's billing in flight (``billing/actions.py``): claimed and committed before
    Stripe is called, dropped when the action's result is written. The primary key makes it one at a time per
    app, as a row lock did, without holding a transaction across Stripe; a claim whose request died is
    taken over once ``claimed_at`` is older than the lease."""

    __tablename__ = "owner_action_claims"

    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    action: Mapped[str] = mapped_column(String(32))
    token: Mapped[str] = mapped_column(String(64))  # its holder's: only the holder drops it
    claimed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    correlation_id: Mapped[Optional[str]] = mapped_column(String(128))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---------------------------------------------------------------- operations: the kill switch and the release ledger


class BillingPause(Base):
    """One pause of billing by a superadmin, from ``paused_at`` until ``resumed_at`` (history: rows are never deleted).

    While a pause is open, events are recorded but not applied, jobs charge nothing and
    plan changes are refused, except for the apps resumed early (``BillingPauseApp``).
    """

    __tablename__ = "billing_pauses"
    __table_args__ = (
        # One open pause at a time: a second "pause" while paused finds the first one.
        Index("uq_billing_pauses_one_open", "scope", unique=True,
              sqlite_where=text("resumed_at IS NULL"), postgresql_where=text("resumed_at IS NULL")),
        CheckConstraint("scope = 'billing'", name="scope_billing"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16), default="billing")
    reason: Mapped[str] = mapped_column(Text)
    paused_by: Mapped[str] = mapped_column(String(254))  # a superadmin's e-mail, or "cli:<login>"
    paused_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    paused_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    resumed_by: Mapped[Optional[str]] = mapped_column(String(254))
    resumed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    resumed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    apps: Mapped[list["BillingPauseApp"]] = relationship(back_populates="pause", order_by="BillingPauseApp.created_at")

    @property
    def is_open(self) -> bool:
        return self.resumed_at is None


class BillingPauseApp(Base):
    """An app whose billing was resumed before the others during a pause (the seed's "one app first")."""

    __tablename__ = "billing_pause_apps"

    pause_id: Mapped[int] = mapped_column(ForeignKey("billing_pauses.id"), primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), primary_key=True)
    resumed_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)

    pause: Mapped[BillingPause] = relationship(back_populates="apps")
    app: Mapped[App] = relationship()


class ReleaseKind(enum.StrEnum):
    RELEASE = "release"  # a deploy (flask release record)
    GATEWAY_MODE = "gateway_mode"  # the gateway started in another mode than the last one recorded
    BILLING_PAUSED = "billing_paused"
    BILLING_RESUMED = "billing_resumed"  # for every app, or (details.apps) for some first
    INCIDENT_NOTICE = "incident_notice"


class Release(Base):
    """The release ledger: deploys, gateway mode changes, pauses, resumes and incident notices, in order."""

    __tablename__ = "releases"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ReleaseKind] = mapped_column(_enum(ReleaseKind, "release_kind"), index=True)
    version: Mapped[Optional[str]] = mapped_column(String(64))
    git_revision: Mapped[Optional[str]] = mapped_column(String(64))
    gateway_mode: Mapped[str] = mapped_column(String(32))  # sandbox, stripe-test, stripe-live
    actor: Mapped[str] = mapped_column(String(254))  # who: a superadmin's e-mail, "cli:<login>", "startup"
    actor_user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    summary: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    # Several processes start at once: only one of them records the same mode change.
    dedupe_key: Mapped[Optional[str]] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow, index=True)

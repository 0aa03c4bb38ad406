"""Dunning: what happens after a renewal payment fails.

The kernel owns retries (Stripe's Smart Retries are off for these subscriptions):

* day 0, the failure: subscription ``past_due``, attempt #0 recorded, alert raised,
  owner notified. The app keeps working: a grace period of ``GRACE_DAYS``.
* retries #1, #2 and #3 on days 3, 5 and 7 (``RETRY_DAYS``), each announced to the
  owner beforehand, each failure recorded and alerted (``jobs/dunning.py`` runs them).
* after the third failure: subscription canceled, app paused.

``open_dunning`` is day 0; it is called by the ``invoice.payment_failed`` webhook
handler and is idempotent (one attempt #0 per invoice, one alert, one notice).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing import audit
from billing.models import AlertSeverity, AttemptStatus, KernelInvoice, KernelPaymentAttempt
from billing.notifications import notify_owners
from billing.sync import Origin

RETRY_DAYS = (3, 5, 7)
GRACE_DAYS = 7


def retry_schedule(failed_at: datetime) -> list[datetime]:
    """When retries #1..#3 fall due after a failure at ``failed_at``."""
    return [failed_at + timedelta(days=day) for day in RETRY_DAYS]


def open_dunning(session: Session, invoice: KernelInvoice, *, failed_at: datetime, origin: Origin,
                 failure_code: Optional[str] = None, failure_message: Optional[str] = None,
                 smtp_configured: bool = False) -> KernelPaymentAttempt:
    """Record the failed renewal (attempt #0), raise an alert and tell the owner. Safe to call again."""
    existing = session.scalar(select(KernelPaymentAttempt).where(
        KernelPaymentAttempt.invoice_id == invoice.id, KernelPaymentAttempt.attempt_number == 0))
    if existing:
        return existing
    attempt = KernelPaymentAttempt(app_id=invoice.app_id, subscription_id=invoice.subscription_id,
                                   invoice_id=invoice.id, attempt_number=0, status=AttemptStatus.FAILED,
                                   attempted_at=failed_at, failure_code=failure_code,
                                   failure_message=failure_message)
    try:
        with session.begin_nested():
            session.add(attempt)
    except IntegrityError:  # the same failure delivered twice at once: the other delivery recorded it
        return session.scalar(select(KernelPaymentAttempt).where(
            KernelPaymentAttempt.invoice_id == invoice.id, KernelPaymentAttempt.attempt_number == 0))

    audit.raise_alert(
        session, kind="payment_failed", severity=AlertSeverity.CRITICAL, app_id=invoice.app_id,
        message=f"Renewal payment failed for invoice {invoice.number or invoice.stripe_invoice_id}"
                f" ({failure_code or 'declined'}); dunning started.",
        details={"invoice": invoice.stripe_invoice_id, "amount_due": invoice.amount_due,
                 "currency": invoice.currency, "failure_code": failure_code},
        dedupe_key=f"payment_failed:{invoice.stripe_invoice_id}:0",
    )
    first_retry = retry_schedule(failed_at)[0]
    notify_owners(
        session, invoice.app, kind="dunning.failed",
        subject="Payment failed: we will try again / Pagamento recusado: tentaremos novamente",
        body=(f"The payment of invoice {invoice.number or invoice.stripe_invoice_id} failed. "
              f"Your app keeps working for {GRACE_DAYS} days. We will try again on "
              f"{first_retry:%Y-%m-%d}; you can pay now with another card from the billing page.\n\n"
              f"O pagamento da fatura {invoice.number or invoice.stripe_invoice_id} foi recusado. "
              f"Seu app continua funcionando por {GRACE_DAYS} dias. Tentaremos novamente em "
              f"{first_retry:%d/%m/%Y}; você pode pagar agora com outro cartão na página de cobrança."),
        dedupe_key=f"dunning:{invoice.stripe_invoice_id}:failed",
        smtp_configured=smtp_configured,
    )
    audit.record(session, action="dunning.opened", object_type="kernel_invoice", object_id=invoice.stripe_invoice_id,
                 app_id=invoice.app_id, before=None,
                 after={"attempt": 0, "failure_code": failure_code, "next_retry": first_retry.isoformat()},
                 actor=origin.actor, actor_user_id=origin.actor_user_id, correlation_id=origin.correlation_id)
    return attempt

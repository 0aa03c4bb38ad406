"""Planted data for the operations tests: subscriptions in given states and payment outcomes, straight in the tables."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.models import App, AppSubscription, KernelPlan, PaymentOutcome
from billing.states import SubscriptionStatus

_ids = itertools.count(1)


def plan(session: Session, code: str) -> KernelPlan:
    return session.scalar(select(KernelPlan).where(KernelPlan.code == code))


def subscription(session: Session, status: SubscriptionStatus, *, plan_code: str = "pro",
                 created_at: datetime, canceled_at: Optional[datetime] = None,
                 cancel_at_period_end: bool = False, period_end: Optional[datetime] = None) -> AppSubscription:
    """A new app with one subscription in ``status``."""
    n = next(_ids)
    app = App(name=f"Planted {n}", slug=f"planted-{n}-{id(session)}")
    session.add(app)
    session.flush()
    row = AppSubscription(app_id=app.id, plan_id=plan(session, plan_code).id, status=status,
                          stripe_customer_id=f"cus_planted{n}", stripe_subscription_id=f"sub_planted{n}_{id(session)}",
                          created_at=created_at, canceled_at=canceled_at, cancel_at_period_end=cancel_at_period_end,
                          current_period_end=period_end)
    session.add(row)
    session.flush()
    return row


def outcome(session: Session, app_id: int, outcome: str, at: datetime, *, reason: Optional[str] = None,
            amount: int = 9900, currency: str = "BRL", plan_code: Optional[str] = None) -> PaymentOutcome:
    n = next(_ids)
    row = PaymentOutcome(reference=f"ch_planted{n}_{id(session)}", app_id=app_id, stripe_payment_intent_id=f"pi_planted{n}",
                         outcome=outcome, reason=reason if outcome == "failed" else None, amount=amount,
                         currency=currency, occurred_at=at, plan_code=plan_code)
    session.add(row)
    session.flush()
    return row


def any_app(session: Session) -> App:
    app = App(name=f"Payer {next(_ids)}", slug=f"payer-{next(_ids)}-{id(session)}")
    session.add(app)
    session.flush()
    return app


DAY = timedelta(days=1)

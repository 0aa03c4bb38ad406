"""The plans the kernel sells, as data, and the lookups the flows need."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from billing.models import KernelPlan


@dataclass(frozen=True)
class PlanSpec:
    code: str
    name: str
    amount: int  # per interval, minor units
    currency: str
    rank: int
    trial_days: int = 0
    interval: str = "month"

    @property
    def price_terms(self) -> tuple[int, str, str]:
        return self.amount, self.currency, self.interval


# The truth about what the kernel sells: ``ensure_plans`` makes the table agree with it and
# ``flask sync-plans`` makes Stripe agree with the table.
CATALOGUE = (
    PlanSpec("free", "Free", 0, "BRL", 0),
    PlanSpec("pro", "Pro", 9900, "BRL", 1),
    PlanSpec("enterprise", "Enterprise", 49900, "BRL", 2),
)


def _terms(plan: KernelPlan) -> tuple[int, str, str]:
    return plan.amount, plan.currency, plan.interval


def retired_code(plan: KernelPlan) -> str:
    """The code a plan's old price keeps once the catalogue changed it (``pro@9900brl-month``)."""
    return f"{plan.code}@{plan.amount}{plan.currency.lower()}-{plan.interval}"[:32]


def ensure_plans(session: Session) -> list[KernelPlan]:
    """Make the plans table say what ``CATALOGUE`` says; returns the catalogue's plans by rank.

    Names, ranks and trials follow the catalogue in place. A new amount, currency or
    interval is a new Stripe price (prices are immutable), so a plan already sold at the
    old terms is retired, not edited: it keeps its price id under a ``retired_code`` and
    goes inactive, so the subscriptions still on it keep mapping to it (and renew at the
    price they bought), while a fresh row under the plan's code waits for ``sync-plans``
    to give it the new price. A plan never sold (no price id yet) simply changes.
    """
    existing = {plan.code: plan for plan in session.scalars(select(KernelPlan))}
    current = []
    for spec in CATALOGUE:
        plan = existing.get(spec.code)
        if plan is not None and plan.stripe_price_id and _terms(plan) != spec.price_terms:
            plan.code, plan.active = retired_code(plan), False
            session.flush()  # the code is unique: free it before the new row takes it
            plan = None
        if plan is None:
            plan = KernelPlan(code=spec.code, stripe_price_id=None)
            session.add(plan)
        plan.name, plan.rank, plan.trial_days, plan.active = spec.name, spec.rank, spec.trial_days, True
        plan.amount, plan.currency, plan.interval = spec.price_terms
        current.append(plan)
    session.flush()
    return sorted(current, key=lambda p: p.rank)


def retired_plans(session: Session) -> list[KernelPlan]:
    """Plans whose price the catalogue no longer sells; their Stripe prices are archived by ``sync-plans``."""
    codes = [spec.code for spec in CATALOGUE]
    return list(session.scalars(select(KernelPlan).where(KernelPlan.code.not_in(codes),
                                                         KernelPlan.stripe_price_id.is_not(None))))


# Built once: pages read the plans on every answer (the plan cards, an invoice's lines, the notices), and
# building a statement costs more than the database running it.
_BY_CODE = select(KernelPlan).where(KernelPlan.code == bindparam("code"))
_BY_PRICE = select(KernelPlan).where(KernelPlan.stripe_price_id == bindparam("price"))
_OFFERED = select(KernelPlan).where(KernelPlan.active).order_by(KernelPlan.rank)


def plan_by_code(session: Session, code: str) -> KernelPlan | None:
    return session.scalar(_BY_CODE, {"code": code})


def plan_by_price(session: Session, stripe_price_id: str) -> KernelPlan | None:
    return session.scalar(_BY_PRICE, {"price": stripe_price_id})


def offered_plans(session: Session) -> list[KernelPlan]:
    """The plans an owner can choose from, cheapest first (the plan page's cards)."""
    return list(session.scalars(_OFFERED))


def paid_plans(session: Session) -> list[KernelPlan]:
    return list(
        session.scalars(
            select(KernelPlan).where(KernelPlan.active, KernelPlan.amount > 0).order_by(KernelPlan.rank)
        )
    )

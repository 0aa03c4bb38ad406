"""The plans the kernel sells, as data, and the lookups the flows need."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.models import KernelPlan


@dataclass(frozen=True)
class PlanSpec:
    code: str
    name: str
    amount: int  # monthly, minor units
    currency: str
    rank: int
    trial_days: int = 0


CATALOGUE = (
    PlanSpec("free", "Free", 0, "BRL", 0),
    PlanSpec("pro", "Pro", 9900, "BRL", 1),
    PlanSpec("enterprise", "Enterprise", 49900, "BRL", 2),
)


def ensure_plans(session: Session) -> list[KernelPlan]:
    """Create the catalogue's plans that are missing; existing rows (and their price ids) are kept."""
    existing = {plan.code: plan for plan in session.scalars(select(KernelPlan))}
    for spec in CATALOGUE:
        if spec.code not in existing:
            plan = KernelPlan(
                code=spec.code,
                name=spec.name,
                amount=spec.amount,
                currency=spec.currency,
                rank=spec.rank,
                trial_days=spec.trial_days,
            )
            session.add(plan)
            existing[spec.code] = plan
    session.flush()
    return sorted(existing.values(), key=lambda p: p.rank)


def plan_by_code(session: Session, code: str) -> KernelPlan | None:
    return session.scalar(select(KernelPlan).where(KernelPlan.code == code))


def plan_by_price(session: Session, stripe_price_id: str) -> KernelPlan | None:
    return session.scalar(select(KernelPlan).where(KernelPlan.stripe_price_id == stripe_price_id))


def paid_plans(session: Session) -> list[KernelPlan]:
    return list(
        session.scalars(
            select(KernelPlan).where(KernelPlan.active, KernelPlan.amount > 0).order_by(KernelPlan.rank)
        )
    )

"""The subscription state machine.

Statuses copy Stripe's strings so a webhook payload maps onto them directly. The
transition table is the single authority on what may follow what: a change it does
not list is refused with ``IllegalTransition`` and nothing is modified.
"""
from __future__ import annotations

from enum import StrEnum

from billing.errors import BillingError


class SubscriptionStatus(StrEnum):
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    PAUSED = "paused"
    CANCELED = "canceled"

    @property
    def grants_access(self) -> bool:
        """Whether the app keeps its paid features in this status (past_due is the grace period)."""
        return self in {self.TRIALING, self.ACTIVE, self.PAST_DUE}

    @property
    def is_terminal(self) -> bool:
        return not TRANSITIONS[self]

    @property
    def has_ended(self) -> bool:
        """Over for good (canceled, expired): the app is back on Free and a new checkout makes a new row."""
        return self in ENDED_STATUSES

    @property
    def in_dunning(self) -> bool:
        return self in {self.PAST_DUE, self.UNPAID}


S = SubscriptionStatus

TRANSITIONS: dict[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    # Checkout creates the subscription incomplete until the first invoice is paid.
    S.INCOMPLETE: frozenset({S.ACTIVE, S.TRIALING, S.INCOMPLETE_EXPIRED, S.CANCELED}),
    S.INCOMPLETE_EXPIRED: frozenset(),
    S.TRIALING: frozenset({S.ACTIVE, S.PAST_DUE, S.UNPAID, S.PAUSED, S.CANCELED}),
    S.ACTIVE: frozenset({S.PAST_DUE, S.UNPAID, S.PAUSED, S.CANCELED}),
    S.PAST_DUE: frozenset({S.ACTIVE, S.UNPAID, S.PAUSED, S.CANCELED}),
    S.UNPAID: frozenset({S.ACTIVE, S.PAUSED, S.CANCELED}),
    # Stripe pauses a subscription whose trial ended without a payment method.
    S.PAUSED: frozenset({S.ACTIVE, S.CANCELED}),
    # A canceled subscription never comes back; subscribing again creates a new one.
    S.CANCELED: frozenset(),
}


# The one definition of "ended": the statuses nothing follows. Every other status is live.
ENDED_STATUSES: tuple[SubscriptionStatus, ...] = tuple(sorted(status for status in S if not TRANSITIONS[status]))


class IllegalTransition(BillingError, ValueError):
    def __init__(self, current: SubscriptionStatus, target: SubscriptionStatus):
        super().__init__(f"a subscription cannot go from {current} to {target}")
        self.current = current
        self.target = target


def can_transition(current: SubscriptionStatus, target: SubscriptionStatus) -> bool:
    return current == target or target in TRANSITIONS[current]


def check_transition(current: SubscriptionStatus, target: SubscriptionStatus) -> None:
    """Raise ``IllegalTransition`` unless ``current -> target`` is allowed (staying put always is)."""
    if not can_transition(current, target):
        raise IllegalTransition(current, target)


def transition_path(current: SubscriptionStatus, target: SubscriptionStatus) -> list[SubscriptionStatus] | None:
    """The shortest chain of allowed transitions from ``current`` to ``target`` (both ends included), if any.

    What a subscription must have gone through when only its first and last states are known.
    """
    paths = {current: [current]}
    frontier = [current]
    while frontier:
        following = []
        for status in frontier:
            for step in sorted(TRANSITIONS[status]):
                if step not in paths:
                    paths[step] = paths[status] + [step]
                    following.append(step)
        if target in paths:
            return paths[target]
        frontier = following
    return None

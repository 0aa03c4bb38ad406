"""The subscription state machine refuses illegal transitions and changes nothing then."""
import pytest

from billing.states import (
    TRANSITIONS, IllegalTransition, SubscriptionStatus as S, can_transition, check_transition, transition_path,
)


@pytest.mark.parametrize(
    "current,target",
    [(S.TRIALING, S.ACTIVE), (S.ACTIVE, S.PAST_DUE), (S.PAST_DUE, S.ACTIVE), (S.PAST_DUE, S.CANCELED),
     (S.ACTIVE, S.CANCELED), (S.INCOMPLETE, S.ACTIVE), (S.PAUSED, S.ACTIVE), (S.TRIALING, S.PAUSED)],
)
def test_allowed_transitions(current, target):
    check_transition(current, target)


@pytest.mark.parametrize(
    "current,target",
    [(S.CANCELED, S.ACTIVE), (S.CANCELED, S.TRIALING), (S.ACTIVE, S.TRIALING), (S.ACTIVE, S.INCOMPLETE),
     (S.PAST_DUE, S.TRIALING), (S.INCOMPLETE_EXPIRED, S.ACTIVE), (S.PAUSED, S.PAST_DUE)],
)
def test_illegal_transitions_raise(current, target):
    with pytest.raises(IllegalTransition):
        check_transition(current, target)


def test_every_status_may_stay_where_it_is():
    for status in S:
        assert can_transition(status, status)


def test_the_table_covers_every_status_and_canceled_is_terminal():
    assert set(TRANSITIONS) == set(S)
    assert S.CANCELED.is_terminal and S.INCOMPLETE_EXPIRED.is_terminal
    assert not S.ACTIVE.is_terminal


def test_grace_period_keeps_access_while_past_due():
    assert S.PAST_DUE.grants_access and S.ACTIVE.grants_access and S.TRIALING.grants_access
    assert not S.CANCELED.grants_access and not S.PAUSED.grants_access


def test_the_shortest_legal_path_between_two_statuses():
    assert transition_path(S.INCOMPLETE, S.PAST_DUE) == [S.INCOMPLETE, S.ACTIVE, S.PAST_DUE]
    assert transition_path(S.ACTIVE, S.ACTIVE) == [S.ACTIVE]
    assert transition_path(S.CANCELED, S.ACTIVE) is None

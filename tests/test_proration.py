"""billing.proration: Stripe's to-the-second proration, rounded per line, in integers."""
from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.money import Money
from billing.proration import ProrationError, prorate, round_share

START = datetime(2026, 11, 1, tzinfo=timezone.utc)
END = START + timedelta(days=30)
PRO, ENTERPRISE = Money(9900, "BRL"), Money(49900, "BRL")


def test_reference_case_pro_to_enterprise_with_15_of_30_days_left_is_200_reais():
    result = prorate(PRO, ENTERPRISE, START, END, START + timedelta(days=15))
    assert result.credit == Money(-4950, "BRL")
    assert result.charge == Money(24950, "BRL")
    assert result.total == Money(20000, "BRL")
    assert result.proration_date == int((START + timedelta(days=15)).timestamp())


def test_change_at_the_start_of_the_period_is_the_full_difference():
    assert prorate(PRO, ENTERPRISE, START, END, START).total == Money(40000, "BRL")


def test_downgrade_gives_a_credit():
    assert prorate(ENTERPRISE, PRO, START, END, START + timedelta(days=15)).total == Money(-20000, "BRL")


def test_change_outside_the_period_is_refused():
    with pytest.raises(ProrationError):
        prorate(PRO, ENTERPRISE, START, END, END)
    with pytest.raises(ProrationError):
        prorate(PRO, ENTERPRISE, START, END, START - timedelta(seconds=1))


def test_mixed_currencies_are_refused():
    with pytest.raises(ProrationError):
        prorate(PRO, Money(100, "USD"), START, END, START)


def test_naive_datetimes_are_refused():
    with pytest.raises(ProrationError):
        prorate(PRO, ENTERPRISE, START, END, datetime(2026, 11, 5))


def test_rounding_is_half_away_from_zero():
    assert round_share(1, 1, 2) == 1  # 0.5 -> 1
    assert round_share(-1, 1, 2) == -1  # -0.5 -> -1
    assert round_share(3, 1, 4) == 1  # 0.75 -> 1
    assert round_share(1, 1, 4) == 0  # 0.25 -> 0


@given(
    old=st.integers(min_value=0, max_value=10**9),
    new=st.integers(min_value=0, max_value=10**9),
    length=st.integers(min_value=1, max_value=400 * 86400),
    data=st.data(),
)
def test_each_line_is_the_exact_share_rounded_to_the_minor_unit(old, new, length, data):
    elapsed = data.draw(st.integers(min_value=0, max_value=length - 1))
    result = prorate(Money(old, "BRL"), Money(new, "BRL"), START, START + timedelta(seconds=length),
                     START + timedelta(seconds=elapsed))
    remaining = Fraction(length - elapsed, length)
    assert abs(Fraction(result.charge.amount) - new * remaining) <= Fraction(1, 2)
    assert abs(Fraction(-result.credit.amount) - old * remaining) <= Fraction(1, 2)
    assert result.charge.amount >= 0 >= result.credit.amount

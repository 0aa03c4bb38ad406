"""Money is integer minor units plus a currency; decimal strings are parsed exactly."""
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.money import Money, MoneyError


@pytest.mark.parametrize(
    "text,currency,amount",
    [("150.00", "BRL", 15000), ("0.01", "brl", 1), ("1234.5", "BRL", 123450), ("500", "JPY", 500),
     ("1.234", "KWD", 1234), (" 99 ", "BRL", 9900)],
)
def test_parse_decimal_strings_into_minor_units(text, currency, amount):
    assert Money.parse(text, currency) == Money(amount, currency.upper())


@pytest.mark.parametrize("text,currency", [("1.001", "BRL"), ("1.5", "JPY"), ("abc", "BRL"), ("NaN", "BRL"),
                                            ("Infinity", "BRL"), ("", "BRL")])
def test_parse_refuses_what_the_currency_cannot_hold(text, currency):
    with pytest.raises(MoneyError):
        Money.parse(text, currency)


def test_amounts_must_be_integers_never_floats():
    with pytest.raises(MoneyError):
        Money(99.0, "BRL")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money(True, "BRL")  # type: ignore[arg-type]


def test_unknown_currency_is_refused():
    with pytest.raises(MoneyError):
        Money(100, "XXX")


def test_arithmetic_refuses_mixed_currencies():
    assert Money(100, "BRL") + Money(50, "BRL") == Money(150, "BRL")
    with pytest.raises(MoneyError):
        Money(100, "BRL") + Money(50, "USD")


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_decimal_round_trip_is_exact(amount):
    money = Money(amount, "BRL")
    assert Money.parse(str(money.to_decimal()), "BRL") == money
    assert money.to_decimal() == Decimal(amount) / 100


def test_format_follows_the_locale():
    assert Money(123456, "BRL").format("pt_BR").replace("\xa0", " ") == "R$ 1.234,56"
    assert Money(123456, "BRL").format("en") == "R$1,234.56"
    assert Money(500, "JPY").format("en") == "¥500"

"""Money as integer minor units plus an ISO 4217 currency code.

Decimal strings only exist at the edges (forms, CSV, the API): they are parsed
here, checked against the currency's precision, and never become floats.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from babel.numbers import format_currency

from billing.errors import BillingError

# Minor-unit exponents of the currencies the kernel bills in, plus zero- and
# three-decimal examples so the rules are exercised beyond two decimals.
CURRENCY_EXPONENTS = {"BRL": 2, "USD": 2, "EUR": 2, "JPY": 0, "KWD": 3}


class MoneyError(BillingError, ValueError):
    """A money value that cannot be represented exactly."""


def exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency.upper()]
    except KeyError:
        raise MoneyError(f"unsupported currency {currency!r}") from None


@dataclass(frozen=True, order=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self):
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise MoneyError("money amounts are integers in minor units")
        object.__setattr__(self, "currency", self.currency.upper())
        exponent(self.currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> "Money":
        """Parse a decimal string such as "150.00" into minor units, refusing extra precision."""
        places = exponent(currency)
        try:
            value = Decimal(text.strip())
        except (InvalidOperation, AttributeError):
            raise MoneyError(f"{text!r} is not a decimal amount") from None
        if not value.is_finite():
            raise MoneyError(f"{text!r} is not a decimal amount")
        scaled = value.scaleb(places)
        if scaled != scaled.to_integral_value():
            raise MoneyError(f"{text!r} has more than {places} decimal places for {currency.upper()}")
        return cls(int(scaled), currency)

    def to_decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-exponent(self.currency))

    def to_decimal_string(self) -> str:
        """The amount as the API writes it: "150.00" for BRL, "150" for JPY (never an exponent such as "0E-2")."""
        return f"{self.to_decimal():f}"

    def __add__(self, other: "Money") -> "Money":
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> "Money":
        return Money(-self.amount, self.currency)

    def _same_currency(self, other: "Money") -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise MoneyError("cannot combine amounts in different currencies")

    def format(self, locale: str) -> str:
        """The amount as people of ``locale`` write it ("R$ 1.234,56" in pt_BR), via Babel's CLDR data."""
        return format_currency(self.to_decimal(), self.currency, locale=locale)

    def __str__(self) -> str:
        return f"{self.to_decimal()} {self.currency}"

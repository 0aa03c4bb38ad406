"""Formatting of integer minor units for people (pages and PDFs only)."""

from __future__ import annotations

from .locales import ENGLISH, interval_text

ZERO_DECIMAL = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf",
                "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}

# symbol, decimal separator, thousands separator, symbol after the number
STYLES = {
    "brl": ("R$ ", ",", ".", False),
    "usd": ("$", ".", ",", False),
    "eur": ("€", ",", ".", False),
    "gbp": ("£", ".", ",", False),
    "jpy": ("¥", ".", ",", False),
}


def format_amount(amount: int, currency: str) -> str:
    """``format_amount(9900, "brl") == "R$ 99,00"``."""
    currency = currency.lower()
    symbol, decimal_sep, thousands_sep, _ = STYLES.get(currency, (currency.upper() + " ", ".", ",", False))
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if currency in ZERO_DECIMAL:
        units, cents = amount, None
    else:
        units, cents = divmod(amount, 100)
    grouped = f"{units:,}".replace(",", thousands_sep)
    text = grouped if cents is None else f"{grouped}{decimal_sep}{cents:02d}"
    return f"{sign}{symbol}{text}"


def format_price(unit_amount: int, currency: str, recurring: dict | None, locale: str = ENGLISH) -> str:
    """``"R$ 99,00 / month"`` (``"R$ 99,00 / mês"`` in pt-BR), ``"$120.00 every 3 months"``, or the bare amount."""
    text = format_amount(unit_amount, currency)
    if not recurring:
        return text
    return interval_text(text, recurring, locale)

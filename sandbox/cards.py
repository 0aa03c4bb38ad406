"""Stripe's test cards, their behaviour, and card-input validation.

A card number lives only in the request that carries it: it is checked here,
reduced to a catalogue key, brand, last4 and a keyed fingerprint, and then
dropped. Nothing below stores, logs or returns a full number or a CVC.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from .errors import CardError
from .ids import ALPHABET

# Behaviours
SUCCEEDS = "succeeds"
DECLINED = "declined"  # declines on attach and on every charge
CHARGE_FAILS = "charge_fails"  # attaches fine, every charge declines
AUTH_REQUIRED = "authentication_required"


@dataclass(frozen=True)
class CatalogueCard:
    key: str
    number: str
    brand: str
    funding: str
    country: str
    behaviour: str = SUCCEEDS
    decline_code: str | None = None

    @property
    def last4(self) -> str:
        return self.number[-4:]


CARDS = [
    CatalogueCard("visa", "4242424242424242", "visa", "credit", "US"),
    CatalogueCard("visa_debit", "4000056655665556", "visa", "debit", "US"),
    CatalogueCard("visa_br", "4000000760000002", "visa", "credit", "BR"),
    CatalogueCard("mastercard", "5555555555554444", "mastercard", "credit", "US"),
    CatalogueCard("mastercard_2series", "2223003122003222", "mastercard", "credit", "US"),
    CatalogueCard("mastercard_debit", "5200828282828210", "mastercard", "debit", "US"),
    CatalogueCard("amex", "378282246310005", "amex", "credit", "US"),
    CatalogueCard("discover", "6011111111111117", "discover", "credit", "US"),
    CatalogueCard("chargeDeclined", "4000000000000002", "visa", "credit", "US", DECLINED, "generic_decline"),
    CatalogueCard("chargeDeclinedInsufficientFunds", "4000000000009995", "visa", "credit", "US",
             DECLINED, "insufficient_funds"),
    CatalogueCard("chargeDeclinedLostCard", "4000000000009987", "visa", "credit", "US", DECLINED, "lost_card"),
    CatalogueCard("chargeDeclinedStolenCard", "4000000000009979", "visa", "credit", "US", DECLINED, "stolen_card"),
    CatalogueCard("chargeCustomerFail", "4000000000000341", "visa", "credit", "US",
             CHARGE_FAILS, "generic_decline"),
    CatalogueCard("authenticationRequired", "4000002500003155", "visa", "credit", "US",
             AUTH_REQUIRED, "authentication_required"),
]
BY_NUMBER = {card.number: card for card in CARDS}
BY_KEY = {card.key: card for card in CARDS}

# ``pm_card_<name>`` ids Stripe accepts in test mode wherever a PaymentMethod id goes.
MAGIC_PAYMENT_METHODS = {
    "pm_card_visa": "visa",
    "pm_card_visa_debit": "visa_debit",
    "pm_card_br": "visa_br",
    "pm_card_mastercard": "mastercard",
    "pm_card_amex": "amex",
    "pm_card_discover": "discover",
    "pm_card_chargeDeclined": "chargeDeclined",
    "pm_card_visa_chargeDeclined": "chargeDeclined",
    "pm_card_chargeDeclinedInsufficientFunds": "chargeDeclinedInsufficientFunds",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "chargeDeclinedInsufficientFunds",
    "pm_card_chargeDeclinedLostCard": "chargeDeclinedLostCard",
    "pm_card_chargeDeclinedStolenCard": "chargeDeclinedStolenCard",
    "pm_card_chargeCustomerFail": "chargeCustomerFail",
    "pm_card_authenticationRequired": "authenticationRequired",
    "pm_card_threeDSecureRequired": "authenticationRequired",
}

DECLINE_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "lost_card": "Your card was declined.",
    "stolen_card": "Your card was declined.",
    "authentication_required": "Your card was declined. This transaction requires authentication.",
    "test_mode_live_card": (
        "Your card was declined. Your request was in test mode, but used a non test (live) card. "
        "For a list of valid test cards, visit: https://stripe.com/docs/testing."),
}

_FINGERPRINT_KEY = b"kernel-billing-sandbox-card-fingerprint"


def luhn_ok(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def fingerprint(number: str) -> str:
    digest = hmac.new(_FINGERPRINT_KEY, number.encode(), hashlib.sha256).digest()
    value = int.from_bytes(digest[:12], "big")
    chars = []
    for _ in range(16):
        value, rest = divmod(value, 62)
        chars.append(ALPHABET[rest])
    return "".join(chars)


@dataclass(frozen=True)
class CardDetails:
    """What may be kept of a card: never the number or the CVC."""

    key: str
    brand: str
    last4: str
    funding: str
    country: str
    exp_month: int
    exp_year: int
    fingerprint: str

    @property
    def test_card(self) -> CatalogueCard | None:
        return BY_KEY.get(self.key)


def normalize_number(raw: str) -> str:
    return "".join(ch for ch in raw if not ch.isspace() and ch != "-")


def card_error(message: str, code: str, param: str | None = None,
               decline_code: str | None = None) -> CardError:
    return CardError(message, code=code, param=param, decline_code=decline_code)


def check_card(number: str, exp_month: int, exp_year: int, cvc: str | None,
               now_year: int, now_month: int, param_prefix: str = "card") -> CardDetails:
    """Validate raw card input (402 card errors as Stripe) and reduce it to storable details."""
    number = normalize_number(number)
    if not luhn_ok(number):
        raise card_error("Your card number is incorrect.", "incorrect_number", f"{param_prefix}[number]")
    if not 1 <= exp_month <= 12:
        raise card_error("Your card's expiration month is invalid.", "invalid_expiry_month",
                         f"{param_prefix}[exp_month]")
    if exp_year < 100:
        exp_year += 2000
    if exp_year < now_year or exp_year > now_year + 50:
        raise card_error("Your card's expiration year is invalid.", "invalid_expiry_year",
                         f"{param_prefix}[exp_year]")
    if (exp_year, exp_month) < (now_year, now_month):
        raise card_error("Your card has expired.", "expired_card", f"{param_prefix}[exp_month]")
    if cvc is not None and not (cvc.isdigit() and len(cvc) in (3, 4)):
        raise card_error("Your card's security code is invalid.", "invalid_cvc", f"{param_prefix}[cvc]")
    known = BY_NUMBER.get(number)
    if known is None:
        # Test mode refuses real card numbers; the sandbox does the same.
        raise card_error(DECLINE_MESSAGES["test_mode_live_card"], "card_declined",
                         decline_code="test_mode_live_card")
    return CardDetails(known.key, known.brand, known.last4, known.funding, known.country,
                       exp_month, exp_year, fingerprint(number))


def details_for(key: str, exp_month: int, exp_year: int) -> CardDetails:
    card = BY_KEY[key]
    return CardDetails(card.key, card.brand, card.last4, card.funding, card.country,
                       exp_month, exp_year, fingerprint(card.number))


def decline(decline_code: str) -> CardError:
    code = "authentication_required" if decline_code == "authentication_required" else "card_declined"
    return card_error(DECLINE_MESSAGES.get(decline_code, "Your card was declined."), code,
                      decline_code=decline_code)

"""Card numbers, CVCs and secret keys never reach a log line."""
import logging

import pytest

from billing.redaction import RedactingFilter, redact


@pytest.mark.parametrize("secret", ["4242424242424242", "4242 4242 4242 4242", "4000-0000-0000-0341",
                                    "sk_test_51HabcDEF123", "sk_live_xyz987", "rk_live_abc", "whsec_abc123"])
def test_secrets_are_redacted(secret):
    assert secret not in redact(f"payload card={secret} end")


@pytest.mark.parametrize("text", ['{"cvc": "123"}', "card[cvc]=4567", "cvv: 999"])
def test_cvc_values_are_redacted(text):
    cleaned = redact(text)
    assert not any(code in cleaned for code in ("123", "4567", "999"))


def test_ordinary_numbers_survive():
    assert redact("invoice in_123 amount 20000 BRL for 30 days") == "invoice in_123 amount 20000 BRL for 30 days"


def test_the_filter_cleans_messages_args_and_tracebacks(caplog):
    logger = logging.getLogger("tests.redaction")
    caplog.handler.addFilter(RedactingFilter())
    logger.warning("charging %s with key %s", "4242 4242 4242 4242", "sk_test_secret1")
    try:
        raise ValueError("card 4000000000000002 declined")
    except ValueError:
        logger.exception("failed")
    text = caplog.text
    assert "4242 4242 4242 4242" not in text and "sk_test_secret1" not in text
    assert "4000000000000002" not in text and "[card number redacted]" in text


def test_the_portal_installs_the_filter_on_the_root_handlers(app):
    assert any(isinstance(f, RedactingFilter) for h in logging.getLogger().handlers for f in h.filters)

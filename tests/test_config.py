"""Configuration comes from the environment; production refuses to start without secrets."""
import pytest

from portal.config import DEV_SECRET_KEY, ConfigError, load_config

PRODUCTION = {
    "PORTAL_ENV": "production",
    "SECRET_KEY": "a-long-random-production-secret",
    "DATABASE_URL": "postgresql+psycopg://kernel@db/kernel",
    "REDIS_URL": "redis://cache:6379/0",
}


def test_development_defaults_run_on_embedded_services():
    config = load_config({})
    assert config["PORTAL_ENV"] == "development"
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert config["BILLING_GATEWAY_ENABLE_REAL"] is False
    assert config["STRIPE_KERNEL_SECRET_KEY"].startswith("sk_test_")
    assert config["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL"])
def test_production_refuses_to_start_without_each_secret(name):
    environ = {k: v for k, v in PRODUCTION.items() if k != name}
    with pytest.raises(ConfigError, match=name):
        load_config(environ)


def test_production_refuses_the_development_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({**PRODUCTION, "SECRET_KEY": DEV_SECRET_KEY})


def test_production_cookies_are_secure():
    config = load_config(PRODUCTION)
    assert config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]
    assert config["SESSION_COOKIE_HTTPONLY"] and config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_real_gateway_requires_stripe_keys():
    with pytest.raises(ConfigError, match="STRIPE_KERNEL_SECRET_KEY.*STRIPE_KERNEL_WEBHOOK_SECRET"):
        load_config({"BILLING_GATEWAY_ENABLE_REAL": "1"})


def test_live_key_refused_unless_allowed():
    environ = {
        "BILLING_GATEWAY_ENABLE_REAL": "1",
        "STRIPE_KERNEL_SECRET_KEY": "sk_live_abc123",
        "STRIPE_KERNEL_WEBHOOK_SECRET": "whsec_abc",
    }
    with pytest.raises(ConfigError, match="BILLING_ALLOW_LIVE"):
        load_config(environ)
    assert load_config({**environ, "BILLING_ALLOW_LIVE": "1"})["STRIPE_KERNEL_SECRET_KEY"] == "sk_live_abc123"


def test_several_webhook_secrets_for_rotation():
    config = load_config({"STRIPE_KERNEL_WEBHOOK_SECRET": "whsec_old, whsec_new"})
    assert config["STRIPE_KERNEL_WEBHOOK_SECRETS"] == ["whsec_old", "whsec_new"]


def test_unknown_environment_name_is_refused():
    with pytest.raises(ConfigError, match="PORTAL_ENV"):
        load_config({"PORTAL_ENV": "staging"})

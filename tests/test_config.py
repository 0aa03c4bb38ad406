"""Configuration comes from the environment; production refuses to start without secrets."""
import pytest

from portal.config import DEV_SECRET_KEY, SANDBOX_WEBHOOK_SECRET, ConfigError, load_config

PRODUCTION = {
    "PORTAL_ENV": "production",
    "SECRET_KEY": "a-long-random-production-secret-0123456789",
    "DATABASE_URL": "postgresql+psycopg://kernel@db/kernel",
    "REDIS_URL": "redis://cache:6379/0",
    "STRIPE_KERNEL_WEBHOOK_SECRET": "whsec_production_endpoint_secret",
    "PORTAL_BASE_URL": "https://billing.kernel.example",
}


def test_development_defaults_run_on_embedded_services():
    config = load_config({})
    assert config["PORTAL_ENV"] == "development"
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert config["BILLING_GATEWAY_ENABLE_REAL"] is False
    assert config["STRIPE_KERNEL_SECRET_KEY"].startswith("sk_test_")
    assert config["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "PORTAL_BASE_URL",
                                  "STRIPE_KERNEL_WEBHOOK_SECRET"])
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


def test_the_production_example_starts():
    config = load_config(PRODUCTION)
    assert config["PORTAL_BASE_URL"] == "https://billing.kernel.example"
    assert config["TRUSTED_HOSTS"] == ["billing.kernel.example"]


@pytest.mark.parametrize("key", ["x", "a" * 31])
def test_production_refuses_a_short_secret_key(key):
    with pytest.raises(ConfigError, match="SECRET_KEY must be at least 32 bytes"):
        load_config({**PRODUCTION, "SECRET_KEY": key})


@pytest.mark.parametrize("name,value", [
    ("STRIPE_KERNEL_WEBHOOK_SECRET", SANDBOX_WEBHOOK_SECRET),
    ("STRIPE_KERNEL_WEBHOOK_SECRET", "whsec_new, " + SANDBOX_WEBHOOK_SECRET),
    ("SECRET_KEY", "test-secret-key"),
])
def test_production_refuses_known_development_secrets(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config({**PRODUCTION, name: value})


def test_the_sandbox_webhook_secret_is_only_a_development_fallback():
    assert load_config({})["STRIPE_KERNEL_WEBHOOK_SECRETS"] == [SANDBOX_WEBHOOK_SECRET]
    # Production with the sandbox gateway (as .env.example pairs them) no longer falls back to it ...
    with pytest.raises(ConfigError, match="STRIPE_KERNEL_WEBHOOK_SECRET"):
        load_config({k: v for k, v in PRODUCTION.items() if k != "STRIPE_KERNEL_WEBHOOK_SECRET"})
    # ... and no environment but development accepts it, even when given explicitly.
    with pytest.raises(ConfigError, match="sandbox's public secret"):
        load_config({"PORTAL_ENV": "test", "STRIPE_KERNEL_WEBHOOK_SECRET": SANDBOX_WEBHOOK_SECRET})
    assert load_config({"PORTAL_ENV": "test"})["STRIPE_KERNEL_WEBHOOK_SECRETS"] == []


def test_production_refuses_a_base_url_that_is_not_absolute():
    with pytest.raises(ConfigError, match="PORTAL_BASE_URL"):
        load_config({**PRODUCTION, "PORTAL_BASE_URL": "billing.kernel.example"})


def test_trusted_hosts_default_to_loopback_in_development_and_can_be_set():
    assert load_config({})["TRUSTED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]
    given = load_config({**PRODUCTION, "TRUSTED_HOSTS": "billing.kernel.example, .kernel.example"})
    assert given["TRUSTED_HOSTS"] == ["billing.kernel.example", ".kernel.example"]


def test_remember_me_lasts_thirty_days_at_most():
    assert load_config({})["REMEMBER_COOKIE_DURATION"].days == 30


def test_the_env_example_passes_the_production_checks_once_its_blanks_are_filled():
    from portal.config import ROOT

    environ = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            environ[name] = value
    environ.update(SECRET_KEY="k" * 48, STRIPE_KERNEL_WEBHOOK_SECRET="whsec_from_the_dashboard")
    assert load_config(environ)["PORTAL_ENV"] == "production"

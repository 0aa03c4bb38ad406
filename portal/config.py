"""Configuration, read from environment variables only.

``load_config(environ)`` returns the Flask settings. Development defaults run the
whole product on one laptop (SQLite, the Stripe sandbox, a local Redis) and are
only safe on localhost; ``PORTAL_ENV=production`` refuses to start without real
secrets.
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from billing.clock import BUSINESS_TIMEZONE

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"

ENVIRONMENTS = ("development", "production", "test")
DEV_SECRET_KEY = "dev-only-secret-key-not-for-production"
SANDBOX_SECRET_KEY = "sk_test_sandbox"
SANDBOX_WEBHOOK_SECRET = "whsec_sandbox_development_only"
SANDBOX_PUBLISHABLE_KEY = "pk_test_sandbox"
# Values published in this repository (defaults, docs, test settings, .env.example): anyone can sign with
# them, so production refuses every one of them, whichever setting holds it.
KNOWN_DEVELOPMENT_SECRETS = frozenset({
    DEV_SECRET_KEY, SANDBOX_SECRET_KEY, SANDBOX_WEBHOOK_SECRET, "test-secret-key", "changeme", "secret",
})
MIN_SECRET_KEY_BYTES = 32
# Host names the development server answers to; production takes PORTAL_BASE_URL's host by default.
DEV_TRUSTED_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class ConfigError(RuntimeError):
    """The environment does not describe a configuration that may start."""


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _pairs(value: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in value.split(",") if "=" in item)
    return {name.strip(): secret.strip() for name, secret in pairs if name.strip() and secret.strip()}


def load_config(environ: Mapping[str, str] | None = None) -> dict:
    env = os.environ if environ is None else environ
    portal_env = env.get("PORTAL_ENV", "development")
    if portal_env not in ENVIRONMENTS:
        raise ConfigError(f"PORTAL_ENV must be one of {', '.join(ENVIRONMENTS)}, not {portal_env!r}")
    production = portal_env == "production"
    real_gateway = _flag(env.get("BILLING_GATEWAY_ENABLE_REAL"))

    missing: list[str] = []

    def required(name: str, default: str) -> str:
        value = env.get(name, "").strip()
        if value:
            return value
        if production:
            missing.append(name)
        return default

    secret_key = required("SECRET_KEY", DEV_SECRET_KEY)
    database_url = required("DATABASE_URL", f"sqlite:///{INSTANCE / 'portal.sqlite3'}")
    redis_url = required("REDIS_URL", "redis://127.0.0.1:6379/0")

    if real_gateway:
        stripe_secret = env.get("STRIPE_KERNEL_SECRET_KEY", "").strip()
        webhook_secrets = env.get("STRIPE_KERNEL_WEBHOOK_SECRET", "").strip()
        publishable = env.get("STRIPE_KERNEL_PUBLISHABLE_KEY", "").strip()
        if not stripe_secret:
            missing.append("STRIPE_KERNEL_SECRET_KEY")
        if not webhook_secrets:
            missing.append("STRIPE_KERNEL_WEBHOOK_SECRET")
    else:
        stripe_secret = env.get("STRIPE_KERNEL_SECRET_KEY", "").strip() or SANDBOX_SECRET_KEY
        webhook_secrets = env.get("STRIPE_KERNEL_WEBHOOK_SECRET", "").strip()
        # The sandbox's webhook secret is public (it is in this file): only a development
        # laptop may fall back to it; anywhere else a signed event with it would be forged.
        if not webhook_secrets and portal_env == "development":
            webhook_secrets = SANDBOX_WEBHOOK_SECRET
        elif not webhook_secrets and production:
            missing.append("STRIPE_KERNEL_WEBHOOK_SECRET")
        publishable = env.get("STRIPE_KERNEL_PUBLISHABLE_KEY", "").strip() or SANDBOX_PUBLISHABLE_KEY
    base_url = env.get("PORTAL_BASE_URL", "").strip().rstrip("/")
    if production and not base_url:
        missing.append("PORTAL_BASE_URL")

    if missing:
        raise ConfigError(
            "Refusing to start: set " + ", ".join(missing) + " in the environment "
            "(see .env.example)."
        )
    webhook_secret_list = [s.strip() for s in webhook_secrets.split(",") if s.strip()]
    if portal_env != "development" and SANDBOX_WEBHOOK_SECRET in webhook_secret_list:
        raise ConfigError("Refusing to start: STRIPE_KERNEL_WEBHOOK_SECRET is the sandbox's public secret, "
                          "which only development accepts.")
    if production:
        _check_production_secrets(secret_key, {"STRIPE_KERNEL_SECRET_KEY": stripe_secret if real_gateway else "",
                                               "STRIPE_KERNEL_WEBHOOK_SECRET": webhook_secret_list})
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).hostname:
            raise ConfigError("Refusing to start: PORTAL_BASE_URL must be an absolute http(s) URL.")
    if real_gateway and stripe_secret.startswith("sk_live_") and not _flag(env.get("BILLING_ALLOW_LIVE")):
        raise ConfigError(
            "Refusing to start: STRIPE_KERNEL_SECRET_KEY is a live key; set BILLING_ALLOW_LIVE=1 "
            "to charge real cards."
        )
    if real_gateway and not stripe_secret.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
        raise ConfigError("Refusing to start: STRIPE_KERNEL_SECRET_KEY does not look like a Stripe secret key.")

    return {
        "PORTAL_ENV": portal_env,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": redis_url,
        "BILLING_GATEWAY_ENABLE_REAL": real_gateway,
        "STRIPE_KERNEL_SECRET_KEY": stripe_secret,
        # Several secrets, comma separated, so the webhook secret can be rotated without downtime.
        "STRIPE_KERNEL_WEBHOOK_SECRETS": webhook_secret_list,
        "STRIPE_KERNEL_PUBLISHABLE_KEY": publishable,
        "SANDBOX_URL": env.get("SANDBOX_URL", "http://127.0.0.1:12111").rstrip("/"),
        # Test mode only: a Stripe test clock new customers are made on and the portal's "now" follows.
        "STRIPE_TEST_CLOCK": env.get("STRIPE_TEST_CLOCK", "").strip() or None,
        # Every URL handed to Stripe (Checkout's success and cancel, return URLs) starts with it; empty
        # only outside production, where the (trusted) request host is used instead.
        "PORTAL_BASE_URL": base_url,
        # Flask answers 400 to any other Host header (Flask 3.1's TRUSTED_HOSTS).
        "TRUSTED_HOSTS": _trusted_hosts(env, base_url, production),
        "RQ_ASYNC": not _flag(env.get("RQ_SYNC")),
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_ENABLED": not _flag(env.get("RATELIMIT_DISABLED")),
        # Redis away must not mean nobody can sign in: count in this process's memory until it is back
        # (Flask-Limiter logs the switch), and let a request through rather than answer 500.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        # Retry-After (and X-RateLimit-*) on limited routes, so a 429 says when to come back.
        "RATELIMIT_HEADERS_ENABLED": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        # "Keep me signed in" lasts 30 days at most, and ends sooner with the user's session token.
        "REMEMBER_COOKIE_DURATION": timedelta(days=30),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        "WTF_CSRF_TIME_LIMIT": 3600 * 8,
        "BABEL_DEFAULT_LOCALE": "pt_BR",
        "BABEL_DEFAULT_TIMEZONE": str(BUSINESS_TIMEZONE),
        "BABEL_TRANSLATION_DIRECTORIES": str(ROOT / "translations"),
        # Per sending address on POST /webhooks/kernel/stripe (docs/webhooks.md explains the figure).
        "WEBHOOK_RATE_LIMIT": env.get("WEBHOOK_RATE_LIMIT", "6000 per minute"),
        # How many reverse proxies stand in front of the portal (0: none). Their X-Forwarded-*
        # headers are trusted, so rate limits see the client's address, not the proxy's.
        "TRUSTED_PROXIES": int(env.get("TRUSTED_PROXIES", "0") or 0),
        "SMTP_URL": env.get("SMTP_URL", ""),
        # /metrics from anywhere but this machine needs "Authorization: Bearer <METRICS_TOKEN>".
        "METRICS_TOKEN": env.get("METRICS_TOKEN", "").strip(),
        # json: one JSON object per line (production's default); text: the human format (development's).
        "LOG_FORMAT": (env.get("LOG_FORMAT", "").strip().lower() or ("json" if production else "text")),
        "MAIL_FROM": env.get("MAIL_FROM", "billing@kernel.localhost"),
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        # Billing Gateway API (docs/gateway-api.md). Raw card data reaches /billing/tokenize only when this is
        # set (the sandbox always allows it): it puts the portal in PCI DSS scope.
        "BILLING_ALLOW_RAW_CARD_API": _flag(env.get("BILLING_ALLOW_RAW_CARD_API")),
        # Refunds above this many minor units wait for a second superadmin; 0: every refund does.
        "BILLING_REFUND_APPROVAL_ABOVE": int(env.get("BILLING_REFUND_APPROVAL_ABOVE", "0") or 0),
        # Generic gateways posting to /billing/webhooks/<name>: "name=secret,other=secret2" (X-Gateway-Signature).
        "GATEWAY_WEBHOOK_SECRETS": _pairs(env.get("GATEWAY_WEBHOOK_SECRETS", "")),
    }


def _check_production_secrets(secret_key: str, others: dict) -> None:
    if len(secret_key.encode()) < MIN_SECRET_KEY_BYTES:
        raise ConfigError(f"Refusing to start: SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes long "
                          "(python -c \"import secrets; print(secrets.token_urlsafe(48))\").")
    if secret_key in KNOWN_DEVELOPMENT_SECRETS:
        raise ConfigError("Refusing to start: SECRET_KEY is a known development value.")
    for name, values in others.items():
        for value in ([values] if isinstance(values, str) else values):
            if value in KNOWN_DEVELOPMENT_SECRETS:
                raise ConfigError(f"Refusing to start: {name} is a known development value.")


def _trusted_hosts(env: Mapping[str, str], base_url: str, production: bool) -> list[str]:
    given = [h.strip() for h in env.get("TRUSTED_HOSTS", "").split(",") if h.strip()]
    if given:
        return given
    hosts = [urlsplit(base_url).hostname] if base_url and urlsplit(base_url).hostname else []
    return hosts if production else list(dict.fromkeys([*hosts, *DEV_TRUSTED_HOSTS]))

"""Configuration, read from environment variables only.

``load_config(environ)`` returns the Flask settings. Development defaults run the
whole product on one laptop (SQLite, the Stripe sandbox, a local Redis) and are
only safe on localhost; ``PORTAL_ENV=production`` refuses to start without real
secrets.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from billing.clock import BUSINESS_TIMEZONE

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"

ENVIRONMENTS = ("development", "production", "test")
DEV_SECRET_KEY = "dev-only-secret-key-not-for-production"
SANDBOX_SECRET_KEY = "sk_test_sandbox"
SANDBOX_WEBHOOK_SECRET = "whsec_sandbox_development_only"
SANDBOX_PUBLISHABLE_KEY = "pk_test_sandbox"


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
        webhook_secrets = env.get("STRIPE_KERNEL_WEBHOOK_SECRET", "").strip() or SANDBOX_WEBHOOK_SECRET
        publishable = env.get("STRIPE_KERNEL_PUBLISHABLE_KEY", "").strip() or SANDBOX_PUBLISHABLE_KEY

    if missing:
        raise ConfigError(
            "Refusing to start: set " + ", ".join(missing) + " in the environment "
            "(see .env.example)."
        )
    if production and secret_key == DEV_SECRET_KEY:
        raise ConfigError("Refusing to start: SECRET_KEY is the development default.")
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
        "STRIPE_KERNEL_WEBHOOK_SECRETS": [s.strip() for s in webhook_secrets.split(",") if s.strip()],
        "STRIPE_KERNEL_PUBLISHABLE_KEY": publishable,
        "SANDBOX_URL": env.get("SANDBOX_URL", "http://127.0.0.1:12111").rstrip("/"),
        "PORTAL_BASE_URL": env.get("PORTAL_BASE_URL", "").rstrip("/"),
        "RQ_ASYNC": not _flag(env.get("RQ_SYNC")),
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_ENABLED": not _flag(env.get("RATELIMIT_DISABLED")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
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

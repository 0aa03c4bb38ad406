"""Response headers that keep the portal's pages from being framed, fed foreign scripts or kept in caches."""
from urllib.parse import urlsplit

from flask import Flask, request
from werkzeug.exceptions import SecurityError

STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"


def _checkout_origin(app: Flask) -> str:
    # Browsers apply form-action to the redirect that follows a form post, and our
    # checkout buttons redirect to the payment page, so its origin must be allowed.
    if app.config["BILLING_GATEWAY_ENABLE_REAL"]:
        return STRIPE_CHECKOUT_ORIGIN
    parts = urlsplit(app.config["SANDBOX_URL"])
    return f"{parts.scheme}://{parts.netloc}"


def init_app(app: Flask) -> None:
    policy = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"frame-ancestors 'none'; form-action 'self' {_checkout_origin(app)}"
    )

    @app.errorhandler(SecurityError)
    def untrusted_host(error: SecurityError):
        # A Host header outside TRUSTED_HOSTS: no URL can be built for it, so no page is rendered either.
        return "Bad Request: this host name is not served here.", 400, {"Content-Type": "text/plain; charset=utf-8"}

    @app.after_request
    def secure_headers(response):
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        # Billing pages and API answers name a tenant's money: no browser or proxy may keep a copy
        # (the back button after sign-out, a shared computer). Only our own static files are cacheable.
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        if app.config["SESSION_COOKIE_SECURE"]:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

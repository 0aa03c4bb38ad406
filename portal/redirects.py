"""Where it is safe to send a browser after sign-in or a language switch, and the URLs we give Stripe."""
from urllib.parse import urlsplit

from flask import current_app, url_for


def is_safe_redirect(target: str | None) -> bool:
    """Only paths on this site: no scheme, no host, no protocol-relative or backslash tricks."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(c) < 32 for c in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def external_url(endpoint: str, **values) -> str:
    """An absolute URL of ours to hand to Stripe (Checkout's success and cancel, return URLs).

    Built from ``PORTAL_BASE_URL``, never from the request's Host header: a forged Host
    would otherwise send a paying customer to another site. Production refuses to start
    without it; elsewhere the request's host is used, which ``TRUSTED_HOSTS`` has
    already limited to the configured names.
    """
    base = current_app.config.get("PORTAL_BASE_URL", "")
    if not base:
        return url_for(endpoint, _external=True, **values)
    return base + url_for(endpoint, **values)

"""Runs each job inside the portal's application context, with its database and settings."""
from __future__ import annotations

import functools
from contextlib import nullcontext
from typing import Callable, TypeVar

from flask import Flask

from portal import create_app
from portal.extensions import db
from portal.payments import checked_job

F = TypeVar("F", bound=Callable)
_app: Flask | None = None


def portal_app() -> Flask:
    """The worker process's one Flask app, built on first use from the environment."""
    global _app
    if _app is None:
        _app = create_app()
    return _app


def use_app(app: Flask) -> None:
    """Run jobs against ``app`` (tests run jobs in-process against their own app)."""
    global _app
    _app = app


def _correlated_with_enqueuer():
    """The correlation id of the request that enqueued the running job (portal/queue.py), for its log lines."""
    from rq import get_current_job

    from billing.webhooks.correlation import correlated

    job = get_current_job()
    correlation_id = (job.meta or {}).get("correlation_id") if job is not None else None
    return correlated(correlation_id) if correlation_id else nullcontext()


def in_app_context(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        app = portal_app()
        with app.app_context(), _correlated_with_enqueuer(), checked_job(f"{func.__module__}.{func.__name__}"):
            try:
                return func(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapper  # type: ignore[return-value]

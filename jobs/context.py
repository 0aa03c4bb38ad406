"""Runs each job inside the portal's application context, with its database and settings."""
from __future__ import annotations

import functools
from typing import Callable, TypeVar

from flask import Flask

from portal import create_app
from portal.extensions import db

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


def in_app_context(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        app = portal_app()
        with app.app_context():
            try:
                return func(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapper  # type: ignore[return-value]

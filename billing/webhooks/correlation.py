"""A correlation id (the Stripe event id) on every log line written while one event is processed.

``with correlated("evt_..."):`` sets it for the current thread or task; a log
record factory then prefixes each message with ``[evt_...]`` and sets
``record.correlation_id``, whichever logger wrote it (billing.sync, the gateway,
the job) and whichever handler prints it (RQ's, gunicorn's, pytest's).
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
from typing import Iterator, Optional

_current: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("correlation_id", default=None)
_installed = False


def current() -> Optional[str]:
    return _current.get()


@contextlib.contextmanager
def correlated(correlation_id: str) -> Iterator[None]:
    install()
    token = _current.set(correlation_id)
    try:
        yield
    finally:
        _current.reset(token)


def install() -> None:
    """Wrap the process's log record factory once (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        correlation_id = _current.get()
        record.correlation_id = correlation_id
        if correlation_id and isinstance(record.msg, str):
            record.msg = f"[{correlation_id}] {record.msg}"
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def enter(correlation_id: str) -> contextvars.Token:
    """Set the correlation id until ``leave(token)``: for code that cannot wrap its work in ``correlated``
    (a request's before and teardown hooks)."""
    install()
    return _current.set(correlation_id)


def leave(token: contextvars.Token) -> None:
    _current.reset(token)

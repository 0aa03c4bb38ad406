"""Applying recorded webhook events as a worker does."""
from __future__ import annotations


def apply_due(app) -> int:
    """Apply every due event as a worker does (RQ_ASYNC on: the endpoint only records); returns how many moved."""
    from jobs.webhooks import Applier

    return Applier(app).drain()

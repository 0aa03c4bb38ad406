"""Webhook endpoint shape."""

from __future__ import annotations

from typing import Any

from .. import API_VERSION

def webhook_endpoint(now: int, *, endpoint_id: str, url: str, enabled_events: list[str],
                     description: str | None, metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "id": endpoint_id,
        "object": "webhook_endpoint",
        "api_version": API_VERSION,
        "application": None,
        "created": now,
        "description": description,
        "enabled_events": enabled_events,
        "livemode": False,
        "metadata": metadata,
        "status": "enabled",
        "url": url,
    }

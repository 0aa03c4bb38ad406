"""Test clock and webhook endpoint shapes."""

from __future__ import annotations

from typing import Any

from .. import API_VERSION

SANDBOX_CLOCK_ID = "clock_sandbox"


def sandbox_clock(*, created: int, frozen_time: int) -> dict[str, Any]:
    return {
        "id": SANDBOX_CLOCK_ID,
        "object": "test_helpers.test_clock",
        "created": created,
        "deletes_after": frozen_time + 30 * 86400,
        "frozen_time": frozen_time,
        "livemode": False,
        "name": "sandbox",
        "status": "ready",
        "status_details": {},
    }


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

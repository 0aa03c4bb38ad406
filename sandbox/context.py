"""What one unit of work (an API request, a page post, a clock step) needs to know."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .store import Db


@dataclass
class Settings:
    """Server-wide settings fixed at start-up."""

    db_path: str
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_retry_base: float = 1.0
    webhook_max_attempts: int = 8
    webhook_timeout: float = 10.0


@dataclass
class Ctx:
    db: Db
    now: int
    base_url: str
    request_id: str | None = None
    idempotency_key: str | None = None
    emitted: list[dict[str, Any]] = field(default_factory=list)
    # Test clocks whose advance runs once this unit of work has committed.
    clocks_to_advance: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

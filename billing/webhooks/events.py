"""A Stripe event as the webhook code reads it, parsed from a verified request body.

Only what routing and ordering need is read here (id, type, created, livemode and
the object); handlers read the object itself. A body without these fields is
refused as malformed, before anything is recorded.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from billing.errors import BillingError

# Stripe's ids are letters, digits and underscores; anything else is refused so the id is
# safe in a job id, a log line and a URL.
EVENT_ID = re.compile(r"evt_[A-Za-z0-9_-]{1,250}")


class MalformedEvent(BillingError, ValueError):
    """The body is signed but is not a Stripe event we can record; ``reason`` names the defect."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    created: int  # unix seconds: the moment the change happened at Stripe, our ordering key
    livemode: bool
    object: Mapping[str, Any]
    previous_attributes: Mapping[str, Any]

    @property
    def object_id(self) -> Optional[str]:
        value = self.object.get("id")
        return value if isinstance(value, str) else None

    @classmethod
    def from_dict(cls, data: Any) -> "Event":
        if not isinstance(data, dict):
            raise MalformedEvent("malformed_event", "the body is not a JSON object")
        event_id, event_type, created = data.get("id"), data.get("type"), data.get("created")
        if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id):
            raise MalformedEvent("malformed_event", "the event has no valid id")
        if not isinstance(event_type, str) or not event_type or len(event_type) > 128:
            raise MalformedEvent("malformed_event", "the event has no type")
        if isinstance(created, bool) or not isinstance(created, int) or created < 0:
            raise MalformedEvent("malformed_event", "the event has no creation time")
        livemode = data.get("livemode")
        if not isinstance(livemode, bool):
            raise MalformedEvent("malformed_event", "the event does not say whether it is live")
        body = data.get("data")
        obj = body.get("object") if isinstance(body, dict) else None
        if not isinstance(obj, dict):
            raise MalformedEvent("malformed_event", "the event carries no object")
        previous = body.get("previous_attributes")
        return cls(event_id, event_type, created, livemode, obj, previous if isinstance(previous, dict) else {})

    @classmethod
    def parse(cls, payload: bytes | str) -> "Event":
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            raise MalformedEvent("malformed_json", "the body is not valid JSON") from None
        return cls.from_dict(data)

"""The endpoint's place in Flask's URL map.

``POST /webhooks/kernel/stripe`` is answered by ``portal/webhooks/endpoint.py``
before Flask sees the request. The rule stays in the URL map as ``webhooks.stripe``
(build only, never matched) so ``url_for("webhooks.stripe")`` gives its address and
the access tests know it as the one route whose authentication is a signature.
"""
from __future__ import annotations

from flask import Blueprint

from portal.webhooks.endpoint import DUPLICATES_KEY, PATH, REJECTED_KEY

__all__ = ["bp", "DUPLICATES_KEY", "REJECTED_KEY"]  # the counters' keys, read by the admin's events page
bp = Blueprint("webhooks", __name__)
bp.add_url_rule(PATH, endpoint="stripe", methods=["POST"], build_only=True)

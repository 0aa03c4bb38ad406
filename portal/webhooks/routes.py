"""The endpoint's place in Flask's URL map.

``POST /webhooks/kernel/stripe`` is answered by ``portal/webhooks/endpoint.py``
before Flask sees the request. The rule stays in the URL map as ``webhooks.stripe``
(build only, never matched) so ``url_for("webhooks.stripe")`` gives its address and
the access tests know it as the one route whose authentication is a signature.
"""
from __future__ import annotations

from flask import Blueprint

from portal.webhooks.endpoint import DUPLICATES_KEY, INBOX, PATH, REJECTED_KEY  # noqa: F401 (read by the admin)

bp = Blueprint("webhooks", __name__)
bp.add_url_rule(PATH, endpoint="stripe", methods=["POST"], build_only=True)

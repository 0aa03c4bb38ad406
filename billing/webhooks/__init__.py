"""Stripe webhooks: signature check, the event inbox, handlers and their processing.

The web endpoint (``portal/webhooks``) verifies and records; the RQ job
(``jobs/webhooks.py``) processes. See docs/webhooks.md.
"""

"""Superadmin pages: events."""
from portal.admin.routes import bp  # noqa: F401

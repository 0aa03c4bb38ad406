"""Superadmin pages: reconciliation."""
from portal.admin.routes import bp  # noqa: F401

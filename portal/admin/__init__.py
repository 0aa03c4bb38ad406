"""The superadmin area: every tenant, subscription, invoice, alert and audit entry.

Each feature adds its pages to the one ``admin`` blueprint from its own module.
"""
from flask import Flask

from portal.admin import events, reconciliation, refunds, routes, users  # noqa: F401 (modules register their views)
from portal.admin import control, dashboard, lists  # noqa: F401 (operations, money at a glance, lists)
from portal.admin import alert_text
from portal.admin.routes import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    alert_text.init_app(app)
    app.register_blueprint(reconciliation.summary_bp)  # GET /billing/reconciliation (JSON)

"""Superadmin views."""
from flask import Blueprint, render_template
from sqlalchemy import select

from billing.models import App
from portal.auth.session import superadmin_required
from portal.extensions import db

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@superadmin_required
def tenants():
    """All tenants with their plan and status."""
    apps = db.session.scalars(select(App).order_by(App.name)).all()
    return render_template("admin/tenants.html", apps=apps)

"""Dashboard views."""
from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload, selectinload

from billing.models import App, AppSubscription

from portal.extensions import db
from portal.tenancy import get_app_or_404, visible_apps

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def home():
    """Send visitors to sign in and signed-in users to their dashboard."""
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    return redirect(url_for("auth.login"))


@bp.get("/dashboard")
@login_required
def index():
    """List the apps the signed-in user may see, with plan and status."""
    # Each row shows its plan and state: read with the apps, not one lazy load per row (and its owners for a
    # superadmin, the only one shown them).
    query = visible_apps(current_user).options(joinedload(App.subscriptions).joinedload(AppSubscription.plan))
    if current_user.is_superadmin:
        query = query.options(selectinload(App.owners))
    apps = db.session.scalars(query).unique().all()
    return render_template("dashboard/index.html", apps=apps)


@bp.get("/apps/<int:app_id>")
@login_required
def app_detail(app_id: int):
    """One app's overview."""
    app = get_app_or_404(app_id)
    return render_template("dashboard/app.html", app=app)

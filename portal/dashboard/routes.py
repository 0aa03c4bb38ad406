"""Dashboard views."""
from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required

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
    apps = db.session.scalars(visible_apps(current_user)).all()
    return render_template("dashboard/index.html", apps=apps)


@bp.get("/apps/<int:app_id>")
@login_required
def app_detail(app_id: int):
    """One app's overview."""
    app = get_app_or_404(app_id)
    return render_template("dashboard/app.html", app=app)

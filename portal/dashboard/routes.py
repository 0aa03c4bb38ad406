"""Dashboard views."""
from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload, selectinload

from billing.models import App, AppSubscription

from portal.extensions import db
from portal.tenancy import VISIBLE_APPS, get_app_or_404, viewer

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def home():
    """Send visitors to sign in and signed-in users to their dashboard."""
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    return redirect(url_for("auth.login"))


# Built once, as the rule's own statements (portal.tenancy): the dashboard is the page most often asked for.
_WITH_PLANS = joinedload(App.subscriptions).joinedload(AppSubscription.plan)
# A superadmin also sees each app's owners (the only one shown them).
_LISTS = {False: VISIBLE_APPS[False].options(_WITH_PLANS),
          True: VISIBLE_APPS[True].options(_WITH_PLANS, selectinload(App.owners))}


@bp.get("/dashboard")
@login_required
def index():
    """List the apps the signed-in user may see, with plan and status."""
    # Each row shows its plan and state: read with the apps, not one lazy load per row.
    query = _LISTS[bool(current_user.is_superadmin)]
    apps = db.session.scalars(query, viewer(current_user)).unique().all()
    return render_template("dashboard/index.html", apps=apps)


@bp.get("/apps/<int:app_id>")
@login_required
def app_detail(app_id: int):
    """One app's overview."""
    app = get_app_or_404(app_id)
    return render_template("dashboard/app.html", app=app)

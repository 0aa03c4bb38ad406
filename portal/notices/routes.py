"""Owner notices (the outbox) and paying an open invoice during dunning."""
from flask import Blueprint, abort
from flask_login import login_required

from portal.tenancy import get_app_or_404

bp = Blueprint("notices", __name__)


@bp.route("/apps/<int:app_id>/pay", methods=["GET", "POST"])
@login_required
def pay_open_invoice(app_id: int):
    """Pay the app's open invoice with a new card, ending dunning (built by the jobs issue)."""
    get_app_or_404(app_id)
    abort(404)

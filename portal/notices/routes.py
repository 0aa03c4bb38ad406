"""Owner notices (the outbox), readable by the app's owners and superadmins."""
from flask import Blueprint

bp = Blueprint("notices", __name__)

"""The JSON API (session or bearer-token auth): 400/401/404/409/502 with a JSON body."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

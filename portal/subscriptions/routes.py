"""An app's plan: checkout, upgrade, downgrade, cancel, resume, payment method."""
from flask import Blueprint

bp = Blueprint("subscriptions", __name__)

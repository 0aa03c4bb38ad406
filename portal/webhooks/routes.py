"""POST /webhooks/kernel/stripe: verify, record, enqueue, answer."""
from flask import Blueprint

bp = Blueprint("webhooks", __name__)

"""An app's invoices: list, detail, links to Stripe's hosted page and PDF."""
from flask import Blueprint

bp = Blueprint("invoices", __name__)

"""The Billing Gateway API under ``/billing/``: tokenize, authorize, capture, refund, webhooks, OpenAPI."""
from flask import Flask

from portal.extensions import csrf
from portal.gateway_api import webhooks  # noqa: F401 (registers its view on the blueprint)
from portal.gateway_api.cli import group as cli_group
from portal.gateway_api.routes import bp


def init_app(app: Flask) -> None:
    # Service keys and signatures authenticate these calls; no cookie is involved, so CSRF does not apply.
    csrf.exempt(bp)
    app.register_blueprint(bp)
    app.cli.add_command(cli_group)

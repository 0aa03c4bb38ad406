"""What every page's layout needs to know: the gateway mode and the signed-in user's role."""
from flask import Flask

from portal import wording


def init_app(app: Flask) -> None:
    @app.context_processor
    def layout_context():
        return {"sandbox_mode": not app.config["BILLING_GATEWAY_ENABLE_REAL"]}

    wording.init_app(app)

"""Owner notices (the outbox), readable by the app's owners and superadmins, and paying during dunning."""
from flask import Flask

from portal.notices import rendering
from portal.notices.attention import billing_attention, pause_reason
from portal.notices.routes import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    rendering.init_app(app)
    app.jinja_env.globals["billing_attention"] = billing_attention
    app.jinja_env.globals["pause_reason"] = pause_reason

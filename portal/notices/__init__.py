"""Owner notices (the outbox), readable by the app's owners and superadmins."""
from flask import Flask

from portal.notices.routes import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

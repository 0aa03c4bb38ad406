"""Sign-in, sign-out and the user loader."""
from flask import Flask

from portal.auth.routes import bp
from portal.auth.session import load_user
from portal.extensions import login_manager


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    # Drops the session when the browser fingerprint Flask-Login keeps changes.
    login_manager.session_protection = "strong"
    login_manager.user_loader(load_user)
    app.register_blueprint(bp)

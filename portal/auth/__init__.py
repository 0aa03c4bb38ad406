"""Sign-in, sign-out and the user loader."""
from flask import Flask

from portal.api_auth import load_user_from_bearer
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
    # The JSON API's bearer tokens (portal/api_auth.py); only views that take tokens look at them.
    login_manager.request_loader(load_user_from_bearer)
    app.register_blueprint(bp)

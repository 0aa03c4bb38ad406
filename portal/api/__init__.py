"""The JSON API (session or bearer-token auth): 400/401/404/409/502 with a JSON body."""
from flask import Flask

from portal.api.routes import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

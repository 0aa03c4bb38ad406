"""Operations endpoints: ``/healthz`` (the process answers), ``/readyz`` (its dependencies answer) and ``/metrics``."""
from flask import Flask

from portal.ops.routes import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

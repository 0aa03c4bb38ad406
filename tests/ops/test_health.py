"""/healthz says the process is up; /readyz asks the database, Redis and the gateway and names what failed."""
from __future__ import annotations

from portal import create_app
from scripts.services import free_port
from tests.helpers.clients import english_client


def test_healthz_answers_without_asking_anything(app_config):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = english_client(create_app({**app_config, "REDIS_URL": dead, "SQLALCHEMY_DATABASE_URI":
                                        "sqlite:////nonexistent-dir/portal.sqlite3"}))
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_is_200_when_database_redis_and_gateway_answer(billing_app):
    response = english_client(billing_app).get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "checks": {"database": "ok", "redis": "ok", "gateway": "ok"}}


def test_readyz_is_503_naming_redis_and_the_gateway_when_they_are_down(app, app_config):
    app.config.update(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    app.extensions["billing_gateway"] = type(app.extensions["billing_gateway"]).for_sandbox(
        f"http://127.0.0.1:{free_port()}")
    response = english_client(app).get("/readyz")
    assert response.status_code == 503
    assert response.json["failed"] == ["gateway", "redis"]
    assert response.json["checks"]["database"] == "ok"


def test_readyz_is_503_naming_the_database_when_it_cannot_be_reached(app_config, sandbox):
    broken = create_app({**app_config, "SANDBOX_URL": sandbox.url,
                         "SQLALCHEMY_DATABASE_URI": "sqlite:////nonexistent-dir/portal.sqlite3"})
    response = english_client(broken).get("/readyz")
    assert response.status_code == 503
    assert response.json["failed"] == ["database"]
    assert "sqlite" not in response.get_data(as_text=True)  # what failed, never where it lives

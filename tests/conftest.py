"""Fixtures shared by the whole suite: services, the app, clients and signed-in users.

The services a test needs (Redis, PostgreSQL, the Stripe sandbox, a live portal)
are started here, once per session, on free ports, and stopped at the end; the
test command only has to install them.
"""
from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from billing import clock
from billing.models import Role
from billing.plans import ensure_plans, paid_plans
from portal import create_app
from jobs.context import use_app
from portal.extensions import db, limiter
from portal.payments import gateway
from sandbox.testing import SandboxProcess
from scripts import services
from tests.helpers.browser import SCREENSHOTS, LiveServer
from tests.helpers.clients import AuthActions, english_client, signed_in_client
from tests.helpers.data import make_app, make_user

# ---------------------------------------------------------------- services

@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    service = services.start_redis(tmp_path_factory.mktemp("redis"))
    yield service.url
    service.stop()


@pytest.fixture(scope="session")
def postgres_url():
    if not any(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.skip("PostgreSQL is not installed: run the README's test command, which installs it")
    # Not under pytest's tmp dir: that one is private to root, and PostgreSQL runs as `postgres`.
    workdir = Path(tempfile.mkdtemp(prefix="kernel-pg-"))
    service = services.start_postgres(workdir)
    yield service.url
    service.stop()


@pytest.fixture(scope="session")
def sandbox_server():
    """The Stripe sandbox (``python -m sandbox``) on a free port, for the whole run.

    Webhook retries are fast (0.1 s base) and give up after 4 attempts, so retry tests stay short.
    """
    with SandboxProcess(webhook_retry_base=0.1, webhook_max_attempts=4, webhook_timeout=5.0) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server):
    """The running sandbox, emptied (objects, clock, faults) before the test."""
    sandbox_server.reset()
    return sandbox_server


def _fresh_postgres_database(request, app_config):
    """Point ``app_config`` at a new PostgreSQL database of its own; dropped afterwards."""
    server = make_url(request.getfixturevalue("postgres_url"))
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    app_config["SQLALCHEMY_DATABASE_URI"] = server.set(database=name).render_as_string(hide_password=False)
    yield "postgres"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, app_config):
    """The test on the file SQLite of ``app_config``, then on a fresh PostgreSQL database of its own.

    Request it before ``app`` or ``billing_app`` so the app is built on the chosen database.
    """
    if request.param == "sqlite":
        yield "sqlite"
        return
    yield from _fresh_postgres_database(request, app_config)


@pytest.fixture
def postgres_backend(request, app_config):
    """``app_config`` pointed at a fresh PostgreSQL database of its own (request it before ``app``)."""
    yield from _fresh_postgres_database(request, app_config)


# ---------------------------------------------------------------- the app

def _test_config(database_url: str, redis_url: str, **overrides) -> dict:
    return {
        "PORTAL_ENV": "test",
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "RATELIMIT_STORAGE_URI": redis_url,
        "WTF_CSRF_ENABLED": False,
        "RQ_ASYNC": False,
        # Unit tests keep the system clock; tests against the sandbox follow its test clock.
        "BILLING_CLOCK_FOLLOWS_GATEWAY": False,
        **overrides,
    }


@pytest.fixture
def app_config(tmp_path, redis_url):
    """Settings for a fresh app on its own SQLite file; tests may change them before using ``app``."""
    return _test_config(f"sqlite:///{tmp_path / 'portal.sqlite3'}", redis_url)


@pytest.fixture
def app(app_config):
    """A fresh portal on its own database.

    No application context stays pushed during the test (as in Flask's tutorial):
    each request then gets its own context, so ``g`` (the signed-in user, the
    locale) and database transactions never leak from one request to the next.
    Tests read the database inside ``with app.app_context():`` blocks.
    """
    application = create_app(app_config)
    with application.app_context():
        db.create_all()
        ensure_plans(db.session)
        db.session.commit()
        limiter.reset()
    use_app(application)  # jobs run in-process (RQ_ASYNC off) or by a test worker use this app
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def billing_app(app_config, sandbox, request):
    """The ``app`` wired to the freshly reset sandbox: plans priced there; customers made on the sandbox's
    test clock and time from it (``STRIPE_TEST_CLOCK``, as against Stripe test mode)."""
    app_config.update(SANDBOX_URL=sandbox.url, BILLING_CLOCK_FOLLOWS_GATEWAY=True, STRIPE_TEST_CLOCK=sandbox.clock_id)
    application = request.getfixturevalue("app")
    with application.app_context():
        for plan in paid_plans(db.session):
            plan.stripe_price_id = gateway().ensure_price(plan_code=plan.code, name=plan.name, amount=plan.price)
        db.session.commit()
    return application


@pytest.fixture
def webhook_pipeline(billing_app, sandbox, tmp_path):
    """Webhooks for real: the sandbox delivers signed events to this test's portal (served over HTTP), and an RQ
    worker process handles them. ``webhook_pipeline.wait()`` blocks until all is handled; see
    tests/webhooks/pipeline.py."""
    from tests.webhooks.pipeline import WebhookPipeline

    pipeline = WebhookPipeline(billing_app, sandbox, tmp_path).start()
    yield pipeline
    pipeline.stop()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(autouse=True)
def _system_clock():
    """Each test starts on the system clock, whatever the previous one installed."""
    clock.use(clock.SystemClock())
    yield
    clock.use(clock.SystemClock())


# ---------------------------------------------------------------- data

@pytest.fixture
def owner(app):
    return make_user(app, "owner@acme.test", name="Ana Owner")


@pytest.fixture
def other_owner(app):
    return make_user(app, "owner@bravo.test", name="Bruno Other")


@pytest.fixture
def superadmin(app):
    return make_user(app, "admin@kernel.test", role=Role.SUPERADMIN, name="Kernel Admin")


@pytest.fixture
def tenant(app, owner):
    return make_app(app, "Acme Analytics", owner, slug="acme")


@pytest.fixture
def other_tenant(app, other_owner):
    return make_app(app, "Bravo Delivery", other_owner, slug="bravo")


@pytest.fixture
def client(app):
    return english_client(app)


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def owner_client(app, owner, tenant):
    """A test client signed in as the owner of ``tenant``."""
    return signed_in_client(app, owner)


@pytest.fixture
def superadmin_client(app, superadmin):
    return signed_in_client(app, superadmin)


# ---------------------------------------------------------------- browser

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium: Playwright cannot download its own browsers on these machines."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed: run the README's test command, which installs it")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    """The kernel's customers are Brazilian: browse as a pt-BR browser does."""
    return {**browser_context_args, "locale": "pt-BR", "viewport": {"width": 1280, "height": 800}}


@pytest.fixture
def live_server(app):
    """The test's app on a real HTTP port. Commit test data before the browser reads it."""
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture
def billing_server(billing_app, live_server):
    """The portal wired to the sandbox (plans priced there, its test clock) on a real port: for billing flows."""
    return live_server


@pytest.fixture
def screenshot():
    """Save a full-page screenshot under docs/screenshots/ (shown in the README)."""

    def save(page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save

"""Browser tests: the portal served for real on a free port, driven by Playwright in Chromium."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from portal.config import ROOT
from scripts.services import free_port

SCREENSHOTS = ROOT / "docs" / "screenshots"


class LiveServer:
    def __init__(self, app):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._thread.join(5)


@pytest.fixture
def live_server(app):
    """The test's app on a real HTTP port. Commit test data before the browser reads it."""
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture
def screenshot():
    """Save a full-page screenshot under docs/screenshots/ (shown in the README)."""

    def save(page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


def sign_in(page, base_url: str, email: str, password: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#submit")


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    """The kernel's customers are Brazilian: browse as a pt-BR browser does."""
    return {**browser_context_args, "locale": "pt-BR", "viewport": {"width": 1280, "height": 800}}


@pytest.fixture
def billing_server(billing_app, live_server):
    """The portal wired to the sandbox (plans priced there, its test clock) on a real port: for billing flows."""
    return live_server

"""The portal served on a real port for a browser, screenshots, and signing in from a page."""
from __future__ import annotations

import threading

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


def sign_in(page, base_url: str, email: str, password: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#submit")

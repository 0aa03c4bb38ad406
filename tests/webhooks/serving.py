"""The test's app served over real HTTP from threads (each request on its own connection to the database)."""
from __future__ import annotations

import threading

from werkzeug.serving import make_server

from scripts.services import free_port


class ThreadedServer:
    def __init__(self, app):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="portal-under-test", daemon=True)

    def __enter__(self) -> "ThreadedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

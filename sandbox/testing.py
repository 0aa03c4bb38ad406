"""Helpers to run the sandbox in tests.

    from sandbox.testing import SandboxProcess

    with SandboxProcess() as sandbox:          # python -m sandbox on a free port
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": sandbox.url},
                                     max_network_retries=0)
        sandbox.reset()
        sandbox.advance(seconds=30 * 86400)    # move the test clock
        sandbox.deliveries()                   # webhook delivery attempts

``SandboxProcess`` starts a subprocess (isolated, closest to production use);
``SandboxThread`` serves the app from a thread of the current process (faster
to start, shares the interpreter). Both expose ``.url`` and the control helpers
of :class:`SandboxControl`.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def wait_until_ready(read: Callable[[], dict[str, Any]], timeout: float = 30.0,
                     interval: float = 0.05) -> dict[str, Any]:
    """Poll a test clock (``read()`` returns it as a dict) until it is ``ready``, as one must against Stripe.

    Advancing a clock only starts the move: Stripe (and the sandbox) answer ``advancing`` and run
    what fell due afterwards. Every test and helper that moves time waits here.
    """
    deadline = time.monotonic() + timeout
    while True:
        current = read()
        if current["status"] == "ready":
            return current
        if current["status"] != "advancing":
            raise RuntimeError(f"test clock {current['id']} is {current['status']}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"test clock {current['id']} still advancing after {timeout} s")
        time.sleep(interval)
_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SandboxControl:
    """Client for the ``/_sandbox`` control endpoints and the test clock of a running sandbox."""

    url: str
    # The test clock ``reset()`` makes: tests create customers on it (``test_clock``) and move it.
    clock_id: str | None = None

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, api: bool = False,
              timeout: float = 120) -> Any:
        headers = {"Content-Type": "application/json"}
        data = None
        if api:
            headers = {"Authorization": "Bearer sk_test_sandbox_control",
                       "Content-Type": "application/x-www-form-urlencoded"}
            from urllib.parse import urlencode

            data = urlencode(body or {}).encode()
        elif body is not None:
            data = json.dumps(body).encode()
        if method == "GET":
            data = None
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with _no_proxy.open(request, timeout=timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path} answered {error.code}: {error.read().decode()}") from None

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/_sandbox/health")

    def sdk_options(self, api_key: str = "sk_test_sandbox") -> dict[str, Any]:
        """Keyword arguments for ``stripe.StripeClient`` aimed at this sandbox, retries off."""
        return {"api_key": api_key, "base_addresses": {"api": self.url, "files": self.url, "connect": self.url},
                "max_network_retries": 0}

    def reset(self, frozen_time: int | None = None) -> str:
        """Empty all state (test clocks too; command-line webhook endpoints stay), then make a new test
        clock frozen at ``frozen_time`` (default: now) as ``clock_id``; returns its id."""
        frozen = int(time.time()) if frozen_time is None else int(frozen_time)
        answer = self._call("POST", "/_sandbox/reset", {"test_clock": {"frozen_time": frozen, "name": "sandbox-tests"}})
        self.clock_id = answer["test_clock"]
        return self.clock_id

    def create_clock(self, frozen_time: int | None = None, name: str = "sandbox") -> str:
        """A new test clock (``POST /v1/test_helpers/test_clocks``); returns its id."""
        frozen = int(time.time()) if frozen_time is None else int(frozen_time)
        return self._call("POST", "/v1/test_helpers/test_clocks", {"frozen_time": str(frozen), "name": name},
                          api=True)["id"]

    def clock(self, clock_id: str | None = None) -> dict[str, Any]:
        return self._call("GET", f"/v1/test_helpers/test_clocks/{clock_id or self._clock()}", api=True)

    def _clock(self) -> str:
        if not self.clock_id:
            raise RuntimeError("no test clock: call reset() (or pass clock_id=)")
        return self.clock_id

    def now(self, clock_id: str | None = None) -> int:
        """The test clock's ``frozen_time`` (unix seconds)."""
        return int(self.clock(clock_id)["frozen_time"])

    def advance(self, seconds: int | None = None, to: int | None = None, clock_id: str | None = None,
                timeout: float = 60.0) -> dict[str, Any]:
        """Advance the test clock by ``seconds`` or to ``to`` and wait until it is ``ready`` (what fell due ran)."""
        if (seconds is None) == (to is None):
            raise ValueError("give exactly one of seconds= or to=")
        clock_id = clock_id or self._clock()
        target = to if to is not None else self.now(clock_id) + int(seconds or 0)
        self._call("POST", f"/v1/test_helpers/test_clocks/{clock_id}/advance", {"frozen_time": str(target)},
                   api=True)
        return wait_until_ready(lambda: self.clock(clock_id), timeout)

    def deliveries(self, **filters: str) -> list[dict[str, Any]]:
        """Webhook delivery attempts, oldest first; filters: event, endpoint, type."""
        from urllib.parse import urlencode

        query = f"?{urlencode(filters)}" if filters else ""
        return self._call("GET", f"/_sandbox/deliveries{query}")

    def pending_deliveries(self) -> int:
        return int(self._call("GET", "/_sandbox/deliveries/pending")["pending"])

    def wait_for_deliveries(self, timeout: float = 10.0) -> None:
        """Block until no webhook delivery is pending (delivered or given up)."""
        deadline = time.monotonic() + timeout
        while self.pending_deliveries():
            if time.monotonic() > deadline:
                raise TimeoutError("webhook deliveries still pending")
            time.sleep(0.05)

    def fail(self, count: int, status: int = 500, delay_seconds: float | None = None) -> None:
        """Make the next ``count`` /v1 requests answer ``status`` (or wait ``delay_seconds`` first)."""
        body: dict[str, Any] = {"count": count}
        if delay_seconds is not None:
            body["delay_seconds"] = delay_seconds
        else:
            body["status"] = status
        self._call("POST", "/_sandbox/fail", body)

    def bulk_seed(self, subscriptions: int, price: str, invoices_per_subscription: int = 1,
                  test_clock: str | None = None, card: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"subscriptions": subscriptions, "price": price,
                                "invoices_per_subscription": invoices_per_subscription}
        if test_clock:
            body["test_clock"] = test_clock
        if card:
            body["card"] = card
        return self._call("POST", "/_sandbox/bulk_seed", body, timeout=600)

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_sandbox/stats")

    def clear_stats(self) -> None:
        self._call("DELETE", "/_sandbox/stats")


def _options(db_path: str | None, webhook_url: str | None, webhook_secret: str | None,
             webhook_retry_base: float, webhook_max_attempts: int, webhook_timeout: float) -> list[str]:
    args = ["--webhook-retry-base", str(webhook_retry_base), "--webhook-max-attempts", str(webhook_max_attempts),
            "--webhook-timeout", str(webhook_timeout)]
    if webhook_url:
        args += ["--webhook-url", webhook_url]
    if webhook_secret:
        args += ["--webhook-secret", webhook_secret]
    return args


class SandboxProcess(SandboxControl):
    """``python -m sandbox`` in a subprocess on a free port, as a context manager.

    Arguments mirror the command line; ``db_path`` defaults to a fresh file in a
    temporary folder removed on exit. ``.url`` is the base URL to give the SDK.
    The subprocess's standard error is kept in ``.log_path`` for post-mortems.
    """

    def __init__(self, db_path: str | None = None, *, webhook_url: str | None = None,
                 webhook_secret: str | None = None, webhook_retry_base: float = 1.0,
                 webhook_max_attempts: int = 8, webhook_timeout: float = 10.0, host: str = "127.0.0.1",
                 port: int = 0, startup_timeout: float = 20.0, env: dict[str, str] | None = None,
                 python: str = sys.executable) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if db_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sandbox-")
            db_path = os.path.join(self._tmp.name, "sandbox.sqlite3")
        self.db_path = db_path
        self.host, self.port = host, port
        self.startup_timeout = startup_timeout
        self.args = [python, "-m", "sandbox", "--host", host, "--port", str(port), "--db", db_path,
                     *_options(db_path, webhook_url, webhook_secret, webhook_retry_base, webhook_max_attempts,
                               webhook_timeout)]
        self.env = dict(os.environ, **(env or {}))
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), self.env.get("PYTHONPATH")]))
        self.env.setdefault("SANDBOX_LOG_LEVEL", "WARNING")
        self.process: subprocess.Popen[str] | None = None
        self.log_path = os.path.join(self._tmp.name if self._tmp else os.path.dirname(os.path.abspath(db_path)),
                                     "sandbox.log")
        self.url = ""

    def start(self) -> "SandboxProcess":
        log = open(self.log_path, "a", encoding="utf-8")
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=log, text=True, env=self.env,
                                        cwd=str(PACKAGE_ROOT))
        log.close()
        lines: queue.Queue[str] = queue.Queue()

        def read_first_line() -> None:
            assert self.process is not None and self.process.stdout is not None
            lines.put(self.process.stdout.readline())

        threading.Thread(target=read_first_line, daemon=True).start()
        try:
            line = lines.get(timeout=self.startup_timeout)
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"sandbox did not start within {self.startup_timeout}s; see {self.log_path}") from None
        if "listening on " not in line:
            self.stop()
            raise RuntimeError(f"sandbox failed to start: {line!r}; see {self.log_path}: {self._log_tail()}")
        self.url = line.split("listening on ", 1)[1].split()[0]
        self._wait_healthy()
        return self

    def _log_tail(self) -> str:
        try:
            return Path(self.log_path).read_text(encoding="utf-8")[-2000:]
        except OSError:
            return ""

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                self.health()
                return
            except Exception:  # noqa: BLE001 - not answering yet
                if time.monotonic() > deadline or (self.process and self.process.poll() is not None):
                    self.stop()
                    raise RuntimeError(f"sandbox is not answering; see {self.log_path}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
            if self.process.stdout:
                self.process.stdout.close()
            self.process = None

    def __enter__(self) -> "SandboxProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


class SandboxThread(SandboxControl):
    """The sandbox app served from a daemon thread of this process (same options as the process)."""

    def __init__(self, db_path: str | None = None, *, webhook_url: str | None = None,
                 webhook_secret: str | None = None, webhook_retry_base: float = 1.0,
                 webhook_max_attempts: int = 8, webhook_timeout: float = 10.0, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if db_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sandbox-")
            db_path = os.path.join(self._tmp.name, "sandbox.sqlite3")
        self.db_path = db_path
        self._options = dict(webhook_url=webhook_url, webhook_secret=webhook_secret,
                             webhook_retry_base=webhook_retry_base, webhook_max_attempts=webhook_max_attempts,
                             webhook_timeout=webhook_timeout)
        self.host, self.port = host, port
        self.url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> "SandboxThread":
        from werkzeug.serving import make_server

        from .server import create_app

        options = dict(self._options)
        self.app = create_app(self.db_path, options.pop("webhook_url"), options.pop("webhook_secret"), **options)
        self._server = make_server(self.host, self.port, self.app, threaded=True)
        self.url = f"http://{self.host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self.app.extensions["sandbox"].dispatcher.stop()
            self.app.extensions["sandbox"].store.close()
            self._server = None

    def __enter__(self) -> "SandboxThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

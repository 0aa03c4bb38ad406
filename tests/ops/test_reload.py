"""A graceful reload of gunicorn, as docs/runbooks/deploy.md does it, drops no request and serves the new release.

Real processes: gunicorn with the project's gunicorn.conf.py (2 workers x 4 threads) run from a ``current``
symlink, four client threads sending requests without pause (two on a new connection each time, two on
kept-alive connections), the symlink switched to a new release and ``python -m scripts.reload`` run from it.
"""
from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from scripts.services import PYTHON, ROOT, free_port, http_ok, wait_until

# What a release directory needs to serve; the rest of the repository (tests, docs, the sandbox) is left out.
RELEASE_FILES = ("billing", "jobs", "portal", "scripts", "static", "templates", "translations", "wsgi.py",
                 "gunicorn.conf.py")


def make_release(base: Path, name: str) -> Path:
    """A copy of this checkout whose answers say which release served them. The mark lives in ``billing``,
    a package gunicorn's master imports itself (gunicorn.conf.py): a new worker must not keep the master's copy."""
    release = base / name
    release.mkdir()
    for item in RELEASE_FILES:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, release / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, release / item)
    with open(release / "billing" / "__init__.py", "a") as init:
        init.write(f"\nRELEASE = {name!r}\n")
    with open(release / "wsgi.py", "a") as wsgi:
        wsgi.write("\n\nimport billing  # noqa: E402\n\n\n@app.after_request\ndef _release(response):\n"
                   "    response.headers['X-Release'] = billing.RELEASE\n    return response\n")
    return release


def point(link: Path, release: Path) -> None:
    """Switch the ``current`` symlink at once, as a deploy does (a new link renamed over the old one)."""
    fresh = link.with_name(link.name + ".new")
    fresh.symlink_to(release)
    os.replace(fresh, link)


class Load:
    """Threads sending GET /healthz without pause, counting answers by release and every failure."""

    def __init__(self, port: int):
        self.port = port
        self.served: list[tuple[float, str]] = []  # (when the request was sent, the release that answered)
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send, args=(keep_alive,), daemon=True)
                         for keep_alive in (False, False, True, True)]

    def _send(self, keep_alive: bool) -> None:
        connection = None
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                connection.request("GET", "/healthz", headers={} if keep_alive else {"Connection": "close"})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
                with self._lock:
                    self.served.append((sent, response.getheader("X-Release", "")))
                if not keep_alive:
                    connection.close()
                    connection = None
            except Exception as error:  # every kind of failure counts, that is the point
                with self._lock:
                    self.failures.append(f"{'keep-alive' if keep_alive else 'new connection'}: {error!r}")
                if connection is not None:
                    connection.close()
                connection = None
        if connection is not None:
            connection.close()

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


def reload_from(release: Path, pidfile: Path, url: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "scripts.reload", "--pid", str(pidfile), "--url", url, "--timeout", "60"],
                          cwd=release, capture_output=True, text=True, timeout=180)


@contextmanager
def serving(release: Path, app_config, tmp_path: Path, *options: str) -> Iterator[tuple[Path, Path, int, str]]:
    """gunicorn started from a ``current`` symlink to ``release``, as a deploy runs it; yields the link, the
    pid file, the port and the URL of /healthz, and stops gunicorn afterwards."""
    current = tmp_path / "current"
    point(current, release)
    port, pidfile = free_port(), tmp_path / "web.pid"
    url = f"http://127.0.0.1:{port}/healthz"
    env = {**os.environ, "PWD": str(current), "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"],
           "REDIS_URL": app_config["REDIS_URL"], "RATELIMIT_DISABLED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [PYTHON, "-m", "gunicorn", "--chdir", str(current), "--pid", str(pidfile), "--bind",
               f"127.0.0.1:{port}", *options, "wsgi:app"]
    with open(tmp_path / "web.log", "ab") as log:
        web = subprocess.Popen(command, cwd=current, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        wait_until(lambda: http_ok(url), "gunicorn", process=web, timeout=60)
        yield current, pidfile, port, url
        assert web.poll() is None, "gunicorn kept running"
    finally:
        web.terminate()
        web.wait(60)


def test_a_reload_under_load_drops_nothing_and_the_new_release_answers(app, app_config, tmp_path):
    releases = tmp_path / "releases"
    releases.mkdir()
    first, second = make_release(releases, "r1"), make_release(releases, "r2")
    with serving(first, app_config, tmp_path, "--workers", "2", "--threads", "4") as (current, pidfile, port, url):
        with Load(port) as load:
            time.sleep(1.5)
            point(current, second)
            reloaded = reload_from(current, pidfile, url)
            reloaded_at = time.monotonic()
            time.sleep(1.5)
            # A second reload, back onto the first release: the new workers drain as well as the first ones.
            switched_back = time.monotonic()
            point(current, first)
            again = reload_from(current, pidfile, url)
            again_at = time.monotonic()
            time.sleep(1.0)
        assert reloaded.returncode == 0, reloaded.stderr
        assert again.returncode == 0, again.stderr
        assert load.failures == []
        assert len(load.served) > 200, "the load ran"
        releases_seen = [release for sent, release in load.served]
        assert releases_seen[0] == "r1"
        assert {release for sent, release in load.served if reloaded_at < sent < switched_back} == {"r2"}
        assert {release for sent, release in load.served if again_at < sent} == {"r1"}


def test_a_release_that_does_not_load_is_not_reloaded(app, app_config, tmp_path):
    releases = tmp_path / "releases"
    releases.mkdir()
    good, broken = make_release(releases, "good"), make_release(releases, "broken")
    with open(broken / "portal" / "__init__.py", "a") as init:
        init.write("\nraise ImportError('a release missing a dependency')\n")
    with serving(good, app_config, tmp_path, "--workers", "1") as (current, pidfile, _, url):
        point(current, broken)
        refused = reload_from(current, pidfile, url)
        assert refused.returncode == 1
        assert "does not load, nothing was reloaded" in refused.stderr
        assert "a release missing a dependency" in refused.stderr
        # gunicorn would have exited on a worker that cannot load the app; it was never told to reload.
        assert http_ok(url)

"""gunicorn as the run command starts it spreads kept-alive browsers over its workers (issue #16, finding 13).

Real processes: ``scripts.services.start_web`` with gunicorn.conf.py's settings, as ``scripts/run`` does.
"""
from __future__ import annotations

import http.client
import os
from pathlib import Path

import pytest

from scripts.services import free_port, start_web

KEEPALIVE_REQUESTS = 50  # gunicorn.conf.py's


@pytest.fixture
def web(app_config, tmp_path, monkeypatch):
    env = {"DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": app_config["REDIS_URL"],
           "RATELIMIT_DISABLED": "1", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("WEB_KEEPALIVE_REQUESTS", raising=False)
    service = start_web(env, free_port(), tmp_path / "web.log", probe="/healthz")
    yield service
    service.stop()


def _workers(master_pid: int) -> set[int]:
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master_pid:
                children.add(int(entry.name))
    return children


def test_a_kept_alive_connection_is_closed_after_its_share_of_requests(web):
    """The 50th answer on one connection says "Connection: close", so the browser's next connection may go to
    another worker; the ones before keep the connection, and the next request on a new one is answered."""
    port = int(web.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    closing = []
    for number in range(1, KEEPALIVE_REQUESTS + 2):
        connection.request("GET", "/healthz")
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 200
        if (answer.getheader("Connection") or "").lower() == "close":
            closing.append(number)
    connection.close()
    assert closing == [KEEPALIVE_REQUESTS]


def test_the_run_command_starts_one_worker_per_core(web):
    assert len(_workers(web.process.pid)) == (os.cpu_count() or 1)


def _connections_held(pid: int, port: int) -> int:
    """Established TCP connections to ``port`` that the process ``pid`` holds open (from /proc)."""
    sockets = set()
    for fd in (Path("/proc") / str(pid) / "fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            sockets.add(target[8:-1])
    held = 0
    for table in ("tcp", "tcp6"):
        path = Path("/proc") / str(pid) / "net" / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in sockets:  # 01: ESTABLISHED
                held += 1
    return held


def test_browsers_arriving_one_after_another_are_spread_over_the_workers(web):
    """On an idle server the first worker to wake took nearly every connection (11,576 requests against 808 in
    one run); each worker now steps aside while another holds fewer (scripts/graceful_worker.py), so kept-alive
    browsers arriving one after the other end up evenly spread, whoever wakes first."""
    port = int(web.url.rsplit(":", 1)[1])
    workers = _workers(web.process.pid)
    browsers = []
    for _ in range(3 * len(workers)):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/healthz")
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 200
        browsers.append(connection)  # kept alive, as a browser keeps it
    try:
        assert sorted(_connections_held(pid, port) for pid in workers) == [3] * len(workers)
    finally:
        for connection in browsers:
            connection.close()

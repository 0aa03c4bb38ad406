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

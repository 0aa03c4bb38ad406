"""The run command supervises what it started: a worker killed with SIGKILL comes back, the web keeps answering,
and Redis keeps an append-only file (issue #11, fault 4). Real processes: ``python -m scripts.run_stack``
(what ``scripts/run`` execs once the virtualenv exists) in a folder of its own, on free ports."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import requests
from redis import Redis
from rq import Worker

from scripts.services import PYTHON, ROOT, free_port, port_is_open, wait_until


def worker_pids(parent: int) -> set[int]:
    """The RQ workers (``python -m jobs.worker``) the run command started: children of its process."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and b"jobs.worker" in cmdline:
            found.add(int(stat.parent.name))
    return found


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError):
        return None


def rq_worker_under(worker: int, redis: Redis) -> bool:
    """Whether ``worker`` (``python -m jobs.worker``) has its RQ worker (a child, ``--rq``) registered in Redis."""
    return any(parent_of(registered.pid) == worker for registered in Worker.all(connection=redis))


def test_the_run_command_restarts_a_killed_worker_while_the_web_answers_and_redis_keeps_an_aof(tmp_path):
    ports = {"PORT": free_port(), "REDIS_PORT": free_port(), "SANDBOX_PORT": free_port()}
    env = {**os.environ, **{name: str(port) for name, port in ports.items()}, "PORTAL_INSTANCE_DIR": str(tmp_path)}
    for name in ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "PORTAL_ENV"):
        env.pop(name, None)
    output = tmp_path / "run.out"
    with open(output, "wb") as log:
        stack = subprocess.Popen([PYTHON, "-m", "scripts.run_stack"], cwd=ROOT, env=env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    web = f"http://127.0.0.1:{ports['PORT']}"
    try:
        wait_until(lambda: b"is running" in output.read_bytes(), "the run command", timeout=90, process=stack)
        redis = Redis(port=ports["REDIS_PORT"])
        assert redis.config_get("appendonly") == {"appendonly": "yes"}
        assert redis.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert redis.config_get("dir")["dir"] == str(tmp_path / "redis")
        (first,) = worker_pids(stack.pid)
        wait_until(lambda: rq_worker_under(first, redis), "the worker's RQ worker registered", timeout=30)

        statuses: list[int | str] = []
        stop = threading.Event()

        def ask_the_web() -> None:
            while not stop.is_set():
                try:
                    statuses.append(requests.get(f"{web}/healthz", timeout=10).status_code)
                except requests.RequestException as error:
                    statuses.append(repr(error))
                time.sleep(0.05)

        asker = threading.Thread(target=ask_the_web)
        asker.start()
        try:
            os.kill(first, signal.SIGKILL)
            wait_until(lambda: worker_pids(stack.pid) - {first}, "a new worker", timeout=20)
            (second,) = worker_pids(stack.pid) - {first}
            # It came back working: listening on RQ's queues with the same Redis.
            wait_until(lambda: rq_worker_under(second, redis), "the new worker's RQ worker registered", timeout=30)
        finally:
            stop.set()
            asker.join(30)
        assert statuses and set(statuses) == {200}, "the web answered throughout"
        assert b"worker stopped unexpectedly" in output.read_bytes()
        assert requests.get(f"{web}/readyz", timeout=10).status_code == 200
        assert stack.poll() is None
    finally:
        stack.send_signal(signal.SIGTERM)  # the run command stops what it started, as on Ctrl-C
        try:
            stack.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
            stack.wait()
    wait_until(lambda: not any(port_is_open(port) for port in ports.values()), "every service stopped", timeout=20)


"""Requests dropped by graceful reloads of gunicorn: the project's worker against gunicorn's stock one, same run.

    .venv/bin/python -m bench.reload [--reloads 3] [--senders 4] [--rounds 2]

Starts Redis and the portal under gunicorn (gunicorn.conf.py, 2 workers x 4 threads, SQLite), then for each
round and each way of connecting (a new connection per request, or kept-alive connections) runs the portal
twice, with gunicorn's stock ``gthread`` worker (``--worker-class gthread``) and with the project's
(scripts/graceful_worker.py), alternating so that other load on the machine weighs on both alike. Each run:
senders request ``/healthz`` without pause while the master is sent SIGHUP ``--reloads`` times, 4 s apart.
Prints requests answered and failed, and the slowest answer (the wait for new workers to load the app).
"""
from __future__ import annotations

import argparse
import http.client
import os
import signal
import tempfile
import threading
import time
from pathlib import Path

from scripts.services import free_port, start_redis, start_web


def one_run(workdir: Path, redis_url: str, keep_alive: bool, stock: bool, reloads: int, senders: int) -> dict:
    port = free_port()
    env = {"DATABASE_URL": f"sqlite:///{workdir / 'portal.sqlite3'}", "REDIS_URL": redis_url,
           "RATELIMIT_DISABLED": "1", "GUNICORN_CMD_ARGS": "--worker-class gthread" if stock else ""}
    web = start_web(env, port, workdir / "web.log", probe="/healthz")
    answered, failed, slowest = 0, 0, 0.0
    lock, stop = threading.Lock(), threading.Event()

    def send() -> None:
        nonlocal answered, failed, slowest
        connection = None
        while not stop.is_set():
            started = time.monotonic()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                connection.request("GET", "/healthz", headers={} if keep_alive else {"Connection": "close"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
                if not keep_alive:
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException):
                ok = False
                if connection is not None:
                    connection.close()
                connection = None
            with lock:
                answered, failed = answered + ok, failed + (not ok)
                slowest = max(slowest, time.monotonic() - started)
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(senders)]
    try:
        for thread in threads:
            thread.start()
        for _ in range(reloads):
            time.sleep(2)
            os.kill(web.process.pid, signal.SIGHUP)
            time.sleep(2)
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(120)
        web.stop()
    return {"answered": answered, "failed": failed, "slowest": slowest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reloads", type=int, default=3)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp:
        workdir = Path(tmp)
        redis = start_redis(workdir / "redis")
        try:
            print(f"{'round':>5}  {'connections':<12} {'worker':<9} {'answered':>9} {'failed':>6} {'slowest':>8}")
            for round_number in range(1, args.rounds + 1):
                for keep_alive in (False, True):
                    for stock in (True, False):
                        result = one_run(workdir, redis.url, keep_alive, stock, args.reloads, args.senders)
                        print(f"{round_number:>5}  {'kept alive' if keep_alive else 'new each':<12} "
                              f"{'stock' if stock else 'project':<9} {result['answered']:>9} {result['failed']:>6} "
                              f"{result['slowest']:>7.1f}s", flush=True)
        finally:
            redis.stop()


if __name__ == "__main__":
    main()

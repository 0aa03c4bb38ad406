"""What one owner page costs the server's CPU, measured in-process (issue #16, finding 13).

    .venv/bin/python -m bench.page_cost [--rounds 200] [--profile PAGE]

Starts Redis and the Stripe sandbox (``scripts/services.py``), migrates a fresh SQLite file and
seeds one owner as ``bench.pages`` does (an app on Pro, six paid invoices, two notices). Then,
in this process, the portal built as gunicorn builds it (``wsgi:app``, the run command's
settings) answers each owner page ``--rounds`` times through Flask's test client, signed in
through the login form; what is printed per page is the median and p95 of this thread's CPU
time (``time.thread_time``, so other processes on the machine do not count, while the
invoice page's wait for the sandbox does not either) and of the wall time, and the number of
SQL statements one answer runs.

``--profile PAGE`` (dashboard, billing, invoices, invoice, notices, healthz) then runs that page
under pyinstrument and prints its call tree (``pip install pyinstrument`` into the venv first).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.pages import (
    CROWD_PAGES, PASSWORD, WEBHOOK_SECRET, default_stack, owner_paths, prepare_database, seed, uptime,
)
from scripts.services import Service, start_redis, start_sandbox

PAGES = ("healthz", *CROWD_PAGES)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="answers timed per page")
    parser.add_argument("--profile", choices=PAGES, help="print pyinstrument's call tree for this page")
    parser.add_argument("--sql", action="store_true", help="print the SQL statements of one answer of each page")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-page-cost-"))
    services: list[Service] = []
    print("load before:", uptime(), flush=True)
    try:
        redis = start_redis(workdir / "redis")
        services.append(redis)
        sandbox = start_sandbox(workdir / "sandbox", webhook_secret=WEBHOOK_SECRET)
        services.append(sandbox)
        env = default_stack(workdir, redis, sandbox, "http://127.0.0.1:5000")
        prepare_database(env)
        owner = seed(env, sandbox.url, 1, 0)["owners"][0]
        os.environ.update(env)
        measure(owner, args.rounds, args.profile, args.sql)
    finally:
        for service in reversed(services):
            service.stop()
    print("load after:", uptime())
    return 0


def measure(owner: dict, rounds: int, profile: str | None, show_sql: bool = False) -> None:
    from sqlalchemy import event

    from portal.extensions import db
    from wsgi import app

    client = app.test_client()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert token, "no CSRF token on the sign-in page"
    signed = client.post("/login", data={"csrf_token": token.group(1), "email": owner["email"],
                                         "password": PASSWORD}, headers={"Accept-Language": "pt-BR"})
    assert signed.status_code == 302, signed.status_code
    paths = {"healthz": "/healthz", **owner_paths(owner)}
    with app.app_context():
        engine = db.engine
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, *_: statements.append(statement))

    def get(path: str) -> None:
        answer = client.get(path, headers={"Accept-Language": "pt-BR"})
        if answer.status_code != 200:
            raise RuntimeError(f"{path} answered {answer.status_code}")

    print(f"\nOne owner page in-process (Flask test client, wsgi:app), {rounds} answers each\n")
    print(f"{'page':<10} | {'CPU p50 ms':>10} | {'CPU p95':>7} | {'wall p50':>8} | {'wall p95':>8} | {'SQL':>3}")
    for name in PAGES:
        for _ in range(20):  # warm: templates compiled, connections open
            get(paths[name])
        statements.clear()
        get(paths[name])
        queries = len(statements)
        cpu, wall = [], []
        for _ in range(rounds):
            started_cpu, started = time.thread_time(), time.perf_counter()
            get(paths[name])
            cpu.append((time.thread_time() - started_cpu) * 1000)
            wall.append((time.perf_counter() - started) * 1000)
        if show_sql:
            shown = "\n".join(f"             {' '.join(statement.split())[:150]}" for statement in statements[:queries])
            print(shown)
        print(f"{name:<10} | {statistics.median(cpu):10.2f} | {_p95(cpu):7.2f} | {statistics.median(wall):8.2f} |"
              f" {_p95(wall):8.2f} | {queries:3d}")
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        with profiler:
            for _ in range(rounds):
                get(paths[profile])
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        print("SQL of one answer:")
        statements.clear()
        get(paths[profile])
        for statement in statements:
            print("  ", " ".join(statement.split())[:200])


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(round(0.95 * (len(ordered) - 1)))]


if __name__ == "__main__":
    sys.exit(main())

"""Where the webhook endpoint's CPU goes, per request, measured in-process (no HTTP, no gunicorn).

    .venv/bin/python -m bench.webhooks_breakdown [--events 3000]

Starts PostgreSQL and Redis, builds the portal as in production (as bench/webhooks.py
does), calls its WSGI app directly with signed ``invoice.paid`` events, and prints the
CPU time per request in total and spent in each step (signature check, parsing, rate
limit, INSERT); "the rest" is the WSGI middleware itself (routing, reading
the body, the answer). CPU time, unlike wall time, is barely disturbed by other load
on the machine. Then, as a yardstick, the bare endpoint's CPU per request in the
same process.
"""
from __future__ import annotations

import argparse
import collections
import functools
import io
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from billing.webhooks.signature import header_for
from bench.webhooks import SECRET, prepare
from scripts.services import PYTHON, ROOT, start_postgres, start_redis

spent: dict[str, float] = collections.defaultdict(float)


def timed(name: str, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        began = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.process_time() - began
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    postgres = start_postgres(Path(tempfile.mkdtemp(prefix="bench-breakdown-pg-")))
    redis = start_redis(Path(tempfile.mkdtemp(prefix="bench-breakdown-redis-")))
    try:
        os.environ.update({
            "PORTAL_ENV": "production", "SECRET_KEY": "benchmark-secret-key-" + "x" * 32,
            "DATABASE_URL": postgres.url, "REDIS_URL": redis.url, "BILLING_GATEWAY_ENABLE_REAL": "1",
            "STRIPE_KERNEL_SECRET_KEY": "sk_test_benchmark_never_called", "STRIPE_KERNEL_WEBHOOK_SECRET": SECRET,
            "WEBHOOK_RATE_LIMIT": "10000000 per minute"})
        subprocess.run([PYTHON, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, check=True,
                       capture_output=True)
        import billing.webhooks.inbox as inbox
        import portal.webhooks.endpoint as endpoint
        import portal.webhooks.ratelimit as ratelimit

        inbox.Inbox.record = timed("INSERT (one statement)", inbox.Inbox.record)
        endpoint.verify = timed("signature check", endpoint.verify)
        endpoint.Event.parse = timed("JSON parsing", endpoint.Event.parse)
        ratelimit.check = timed("rate limit (INCR + EXPIRE, one round trip)", ratelimit.check)
        from portal import create_app

        app = create_app()
        logging.getLogger().setLevel(logging.WARNING)

        def call(body: bytes, wsgi_app=app) -> None:
            environ = {
                "REQUEST_METHOD": "POST", "PATH_INFO": "/webhooks/kernel/stripe", "SCRIPT_NAME": "",
                "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
                "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
                "HTTP_STRIPE_SIGNATURE": header_for(SECRET, body), "HTTP_HOST": "127.0.0.1:8000",
                "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
                "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0)}
            statuses = []
            b"".join(wsgi_app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
            assert statuses[0].startswith("200"), statuses

        for body in prepare(500, "warm"):
            call(body)
        spent.clear()
        bodies = prepare(args.events, "measured")
        began = time.process_time()
        for body in bodies:
            call(body)
        total = (time.process_time() - began) / len(bodies) * 1000
        print(f"CPU per request: {total:.3f} ms in total")
        for name, seconds in sorted(spent.items(), key=lambda item: -item[1]):
            print(f"  {name:40s} {seconds / len(bodies) * 1000:.3f} ms")
        rest = total - sum(spent.values()) / len(bodies) * 1000
        print(f"  {'the rest (WSGI middleware, body, answer)':40s} {rest:.3f} ms")

        # The bare endpoint (bench/webhooks_bare.py) in the same process and run: its CPU is the yardstick.
        os.environ["BARE_CONNINFO"] = postgres.url.replace("postgresql+psycopg://", "postgresql://")
        from bench.webhooks_bare import app as bare

        for body in prepare(500, "bare_warm"):
            call(body, bare)
        bodies = prepare(args.events, "bare_measured")
        began = time.process_time()
        for body in bodies:
            call(body, bare)
        bare_cpu = (time.process_time() - began) / len(bodies) * 1000
        print(f"Bare endpoint, same run: {bare_cpu:.3f} ms CPU per request (the portal's is {total / bare_cpu:.2f}x)")
    finally:
        redis.stop()
        postgres.stop()


if __name__ == "__main__":
    main()

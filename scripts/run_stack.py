"""The run command: the whole product on embedded defaults, on this machine.

Starts Redis, the Stripe sandbox, an RQ worker with its scheduler and the web
server; migrates and seeds the SQLite database on first start; prints the URL and
the demo logins. Ctrl-C stops everything it started, in reverse order.

Ports can be moved with PORT, REDIS_PORT and SANDBOX_PORT; the folder of its data and logs with
PORTAL_INSTANCE_DIR (default ``instance/``; the SQLite database goes there unless DATABASE_URL says otherwise).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from portal.config import SANDBOX_WEBHOOK_SECRET
from scripts.services import PYTHON, ROOT, Service, port_is_open, start_redis, start_sandbox, start_web, start_worker

INSTANCE = Path(os.environ.get("PORTAL_INSTANCE_DIR") or ROOT / "instance")
LOGS = INSTANCE / "logs"


def _port(name: str, default: int) -> int:
    port = int(os.environ.get(name, default))
    if port_is_open(port):
        sys.exit(f"Port {port} is already in use; set {name} to another port.")
    return port


def _flask(env: dict, *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"flask {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def main() -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    web_port = _port("PORT", 5000)
    redis_port = _port("REDIS_PORT", 6390)
    sandbox_port = _port("SANDBOX_PORT", 12111)
    base_url = f"http://127.0.0.1:{web_port}"
    webhook_secret = os.environ.get("STRIPE_KERNEL_WEBHOOK_SECRET", SANDBOX_WEBHOOK_SECRET)

    started: list[Service] = []

    def stop_all(*_):
        for service in reversed(started):
            print(f"  stopping {service.name}")
            service.stop()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)

    try:
        print("==> Starting Redis")
        redis = start_redis(INSTANCE / "redis", redis_port, LOGS / "redis.log", persistent=True)
        started.append(redis)
        print("==> Starting the Stripe sandbox")
        sandbox = start_sandbox(
            INSTANCE, sandbox_port, webhook_url=f"{base_url}/webhooks/kernel/stripe",
            webhook_secret=webhook_secret, log_path=LOGS / "sandbox.log",
        )
        started.append(sandbox)
        # Every web and worker process writes its Prometheus counters here; /metrics adds them up (billing/metrics.py).
        metrics_dir = INSTANCE / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env = {
            "DATABASE_URL": f"sqlite:///{INSTANCE / 'portal.sqlite3'}",
            **os.environ,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "REDIS_URL": redis.url,
            "SANDBOX_URL": sandbox.url,
            "PORTAL_BASE_URL": base_url,
            "STRIPE_KERNEL_WEBHOOK_SECRET": webhook_secret,
        }
        print("==> Migrating the database")
        _flask(env, "db", "upgrade")
        logins = _flask(env, "seed-demo")
        _flask(env, "sync-plans")
        print("==> Starting the worker (Stripe events, RQ jobs and their scheduler)")
        started.append(start_worker(env, LOGS / "worker.log"))
        print("==> Starting the web server")
        web = start_web(env, web_port, LOGS / "web.log")
        started.append(web)
    except (RuntimeError, OSError) as error:
        print(f"Could not start: {error}. Logs are in {LOGS}.")
        stop_all()

    print(
        f"""
Kernel Billing Portal is running (sandbox mode: no real charges).

  Portal        {web.url}
  Stripe sandbox {sandbox.url}
  Logs          {LOGS}

Demo logins:
{logins}
Test cards: 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined;
            4000 0000 0000 9995 has insufficient funds; 4000 0000 0000 0341 fails on renewal.

Press Ctrl-C to stop everything.
"""
    )
    # A service that dies is started again, alone: the others (the web server above all) keep answering.
    # Events acknowledged meanwhile wait in the database; queued jobs wait in Redis's append-only file.
    restart = {
        "redis": lambda: start_redis(INSTANCE / "redis", redis_port, LOGS / "redis.log", persistent=True),
        "sandbox": lambda: start_sandbox(INSTANCE, sandbox_port, webhook_url=f"{base_url}/webhooks/kernel/stripe",
                                         webhook_secret=webhook_secret, log_path=LOGS / "sandbox.log"),
        "worker": lambda: start_worker(env, LOGS / "worker.log"),
        "web": lambda: start_web(env, web_port, LOGS / "web.log"),
    }
    while True:
        for index, service in enumerate(started):
            if service.process is not None and service.process.poll() is not None:
                print(f"{service.name} stopped unexpectedly (exit {service.process.returncode}, see {LOGS});"
                      " starting it again", flush=True)
                try:
                    started[index] = restart[service.name]()
                except (RuntimeError, OSError) as error:
                    print(f"  could not start {service.name} again ({error}); next try in a second", flush=True)
        time.sleep(1)


if __name__ == "__main__":
    main()

"""Start and stop the local services the product needs: Redis, PostgreSQL, the Stripe
sandbox, an RQ worker and the web server.

Shared by the run command (``scripts/run_stack.py``), the test suite and the
benchmarks, so all three start things the same way. Every service binds to
127.0.0.1 only and lives in a folder of its own.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def wait_until(check, what: str, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} while starting")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


@dataclass
class Service:
    name: str
    process: subprocess.Popen | None  # None for a server that daemonizes itself (PostgreSQL's pg_ctl)
    url: str = ""
    stop_command: list[str] | None = None
    extra: dict = field(default_factory=dict)

    def stop(self, timeout: float = 10.0) -> None:
        if self.stop_command:
            subprocess.run(self.stop_command, capture_output=True, timeout=60)
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _spawn(command: list[str], log_path: Path | None, env: dict | None = None, cwd: Path = ROOT) -> subprocess.Popen:
    # Each service gets its own process group so one Ctrl-C is handled by us, in order.
    if log_path is None:
        return subprocess.Popen(command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.STDOUT, start_new_session=True)
    # The child keeps its own copy of the descriptor; ours is closed as soon as it has started.
    with open(log_path, "ab") as output:
        return subprocess.Popen(command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True)


def start_redis(workdir: Path, port: int | None = None, log_path: Path | None = None,
                persistent: bool = False) -> Service:
    """Redis on 127.0.0.1; ``persistent`` (the run command) keeps an append-only file in ``workdir``, synced
    every second, so a crash or restart loses at most about a second of queued jobs and schedules."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    durability = ["--appendonly", "yes", "--appendfsync", "everysec"] if persistent else ["--appendonly", "no"]
    process = _spawn(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", *durability, "--dir", str(workdir)],
        log_path,
    )
    wait_until(lambda: port_is_open(port), "Redis", process=process)
    return Service("redis", process, url=f"redis://127.0.0.1:{port}/0")


def start_sandbox(
    workdir: Path,
    port: int | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    log_path: Path | None = None,
    extra_args: list[str] | None = None,
) -> Service:
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    command = [PYTHON, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port),
               "--db", str(workdir / "sandbox.sqlite3")]
    if webhook_url:
        command += ["--webhook-url", webhook_url]
    if webhook_secret:
        command += ["--webhook-secret", webhook_secret]
    command += extra_args or []
    process = _spawn(command, log_path)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(f"{url}/_sandbox/health"), "the Stripe sandbox", process=process)
    return Service("sandbox", process, url=url)


def postgres_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
    return candidates[-1].parent


def start_postgres(workdir: Path, port: int | None = None) -> Service:
    """initdb + pg_ctl start in ``workdir``; PostgreSQL refuses root, so run it as ``postgres`` then."""
    bindir = postgres_bin()
    port = port or free_port()
    datadir = workdir / "pgdata"
    as_root = os.geteuid() == 0

    def run_as_owner(args: list[str]) -> list[str]:
        if not as_root:
            return args
        return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(_quote(a) for a in args)]

    workdir.mkdir(parents=True, exist_ok=True)
    if as_root:
        shutil.chown(workdir, "postgres", "postgres")
        workdir.chmod(0o755)
    if not (datadir / "PG_VERSION").exists():
        subprocess.run(
            run_as_owner([str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust",
                          "--no-sync", "-E", "UTF8"]),
            check=True, capture_output=True,
        )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} -c fsync=off -c max_connections=200"
    subprocess.run(
        run_as_owner([str(bindir / "pg_ctl"), "-D", str(datadir), "-o", options, "-l",
                      str(workdir / "postgres.log"), "-w", "start"]),
        check=True, capture_output=True,
    )
    stop = run_as_owner([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"])
    return Service("postgres", None, url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
                   stop_command=stop, extra={"port": port})


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def start_worker(env: dict, log_path: Path | None = None) -> Service:
    process = _spawn([PYTHON, "-m", "jobs.worker"], log_path, env=env)
    time.sleep(0.5)
    if process.poll() is not None:
        raise RuntimeError(f"the RQ worker exited with code {process.returncode}")
    return Service("worker", process)


def start_web(env: dict, port: int, log_path: Path | None = None, workers: int | None = None,
              threads: int | None = None, probe: str = "/readyz") -> Service:
    """gunicorn on ``port``; its workers and threads are gunicorn.conf.py's unless given here (a test, a benchmark)."""
    command = [PYTHON, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--access-logfile", "-"]
    if workers is not None:
        command += ["--workers", str(workers)]
    if threads is not None:
        command += ["--threads", str(threads)]
    command.append("wsgi:app")
    process = _spawn(command, log_path, env=env)
    url = f"http://127.0.0.1:{port}"
    # Ready, not merely up: /readyz answers 200 once the database, Redis and the gateway answer too
    # (a caller with no gateway running, like the webhook benchmark, waits on /healthz instead).
    wait_until(lambda: http_ok(f"{url}{probe}"), "the web server", process=process, timeout=60)
    return Service("web", process, url=url)

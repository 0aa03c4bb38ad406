"""Reload the web server onto the release on disk without dropping a request (docs/runbooks/deploy.md).

    .venv/bin/python -m scripts.reload --pid /run/kernel-billing/web.pid [--url http://127.0.0.1:8000/healthz]

Run it from the new release's directory, as the user gunicorn runs as (or root). It

1. imports the release (``import wsgi``, what each new worker does) with the master's own environment, and
   stops there if that fails: gunicorn's master exits when a reloaded worker cannot load the application,
   which would take the site down;
2. sends SIGHUP to gunicorn's master: it re-reads gunicorn.conf.py, starts new workers on the code on disk
   and stops the old ones gracefully (they answer every connection they accepted:
   scripts/graceful_worker.py);
3. waits until every old worker has exited, as many new ones run, and ``--url`` answers 200 (only new
   workers are left to answer it), and says so; exit status 1 if that does not happen within ``--timeout``.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (gunicorn's workers, for its master)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name (field 2) may hold spaces and parentheses: fields after its last ')' are safe.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def master_environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)
    return dict(pairs)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def reload(pid: int, url: str | None, timeout: float, release: Path = ROOT) -> str:
    """Reload gunicorn's master ``pid``; returns what happened, raises RuntimeError when it did not work."""
    environment = master_environment(pid)
    # The check serves nothing: it must not leave counter files of its own among the workers' (docs/metrics.md).
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    preflight = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=release, env=environment,
                               capture_output=True, text=True, timeout=120)
    if preflight.returncode != 0:
        raise RuntimeError(f"the release in {release} does not load, nothing was reloaded:\n"
                           f"{preflight.stderr.strip()[-2000:]}")
    old = children(pid)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            raise RuntimeError(f"gunicorn's master (pid {pid}) exited during the reload: read its log")
        current = children(pid)
        if not old & current and len(current) >= len(old) and (url is None or answers(url)):
            return f"reloaded: workers {sorted(old)} replaced by {sorted(current)}"
        time.sleep(0.2)
    raise RuntimeError(f"the reload did not finish within {timeout:.0f}s: workers now {sorted(children(pid))}, "
                       f"before {sorted(old)}")


def parser() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(prog="python -m scripts.reload", description=__doc__.split("\n\n")[0])
    options.add_argument("--pid", required=True, help="gunicorn's pid file (its --pid), or the master's pid")
    options.add_argument("--url", help="a URL that must answer 200 afterwards, e.g. http://127.0.0.1:8000/healthz")
    options.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default 60)")
    return options


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    pid = int(args.pid) if args.pid.isdigit() else int(Path(args.pid).read_text().strip())
    try:
        print(reload(pid, args.url, args.timeout), flush=True)
    except RuntimeError as error:
        print(f"reload failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

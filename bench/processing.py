"""Receive -> applied benchmark: Stripe events sent to the portal, applied by 1..N worker processes.

    .venv/bin/python -m bench.processing [--sqlite] [--workers 1,2,4] [--events 2000] [--senders 4]
                                         [--steady-rate 50] [--steady-seconds 20] [--peer]

Starts the stack as in production: PostgreSQL (or, with ``--sqlite``, the README's
default SQLite file), Redis, the portal under gunicorn (2 workers x 4 threads) and
``python -m jobs.worker --events-only`` processes. For each number of workers it
sends a burst of signed ``invoice.paid`` events about invoices that are not ours
(the cheapest event to apply: recorded, looked up, ignored) from ``--senders``
concurrent senders, and reads the figures from ``processed_webhooks`` itself:

* applied events/s: events / (last applied - first received);
* receive -> applied p50 / p99 (``processed_at - received_at`` of each event);
* lost (sent and acknowledged but not applied) and doubled (applied more than once:
  ``attempts > 1``) counts.

Then a steady load (``--steady-rate`` events/s for ``--steady-seconds``) with the
largest number of workers, for the latency at a steady rate. With ``--peer`` it runs
the dj-stripe peer (``/work/shared/peers/djstripe``: setup once, about a minute, then
its ``run.sh`` with invoice.finalized, applied synchronously in the request, at 1 and
4 senders) and prints its figures beside ours. ``uptime`` is printed before and
after: the machine is shared, and only the side-by-side figures are comparable.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from bench import renewals
from bench.webhooks import SECRET, prepare, send_all
from billing.models import ProcessedWebhook
from billing.webhooks.backlog import WAITING
from billing.webhooks.signature import header_for
from scripts.services import PYTHON, ROOT, Service, free_port, start_postgres, start_redis, start_web

PATH = "/webhooks/kernel/stripe"
PEER = Path(os.environ.get("PEER_DJSTRIPE", "/work/shared/peers/djstripe"))
PEER_ROOT = Path(os.environ.get("PEER_ROOT", "/tmp/peer-djstripe"))


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def start_workers(env: dict, count: int, logs: Path) -> list[Service]:
    services = []
    for index in range(count):
        with open(logs / f"worker{index}.log", "ab") as log:
            process = subprocess.Popen([PYTHON, "-m", "jobs.worker", "--events-only"], cwd=ROOT,
                                       env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        services.append(Service(f"worker{index}", process))
    return services


def high_water(engine) -> int:
    """The last recorded event's row id: what is sent next is what lies above it."""
    with engine.connect() as connection:
        return connection.execute(text("SELECT coalesce(max(id), 0) FROM processed_webhooks")).scalar()


def waiting_above(engine, floor: int) -> int:
    """Events recorded above row ``floor`` still waiting to be applied, as the backlog counts them (metrics,
    alerts and the admin page alike: ``billing.webhooks.backlog``)."""
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(ProcessedWebhook)
                                  .where(WAITING, ProcessedWebhook.id > floor)).scalar() or 0


def figures(engine, floor: int, sent: int, timeout: float = 600, since: float | None = None) -> dict:
    """Wait until every event recorded above row ``floor`` is applied (or ``timeout``), then read the figures
    from the table."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not waiting_above(engine, floor):
            break
        time.sleep(0.2)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT received_at, processed_at, attempts, status FROM processed_webhooks "
                                       "WHERE id > :f"), {"f": floor}).all()
        retried = connection.execute(text("SELECT type, attempts, status, last_error FROM processed_webhooks "
                                          "WHERE id > :f AND attempts > 1"), {"f": floor}).all()
    for event_type, attempts, status, error in retried[:5]:
        print(f"    retried: {event_type} x{attempts} ({status}): {(error or '')[:200]}")

    def moment(value):
        return value.timestamp() if hasattr(value, "timestamp") else \
            __import__("datetime").datetime.fromisoformat(str(value)).timestamp()

    applied = [(moment(r[0]), moment(r[1])) for r in rows if r[1] is not None and r[3] in ("processed", "ignored")]
    latencies = sorted((done - got) * 1000 for got, done in applied)
    # From the first receipt, or (a backlog drained) from when the workers started, to the last applied.
    span = (max(d for _, d in applied) - (since if since is not None else min(g for g, _ in applied))) \
        if applied else float("nan")

    def pct(q):
        return latencies[min(len(latencies) - 1, int(round(q * (len(latencies) - 1))))] if latencies else float("nan")

    return {"sent": sent, "applied": len(applied), "rate": len(applied) / span if applied else 0.0,
            "span": span, "p50": pct(0.5), "p99": pct(0.99), "max": latencies[-1] if latencies else float("nan"),
            "lost": sent - len(applied), "doubled": sum(1 for r in rows if r[2] > 1),
            "failed": sum(1 for r in rows if r[3] == "failed"), "ignored": sum(1 for r in rows if r[3] == "ignored"),
            "over_5s": sum(1 for x in latencies if x > 5000)}


def steady(port: int, bodies: list[bytes], rate: float) -> list[float]:
    """Send ``bodies`` at ``rate`` events/s from one paced sender; returns acknowledgement latencies (ms)."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    acks = []
    began = time.perf_counter()
    for index, body in enumerate(bodies):
        wait = began + index / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        sent = time.perf_counter()
        connection.request("POST", PATH, body=body, headers={"Content-Type": "application/json",
                                                              "Stripe-Signature": header_for(SECRET, body)})
        connection.getresponse().read()
        acks.append((time.perf_counter() - sent) * 1000)
    connection.close()
    return acks


def run_peer(events: int) -> dict[int, tuple[float, float, float]]:
    """dj-stripe's synchronous endpoint (invoice.finalized, re-fetched in the request): {senders: (ev/s, p50, p99)}."""
    if not (PEER / "run.sh").exists():
        print(f"(no peer scripts at {PEER}: skipped)")
        return {}
    if not (PEER_ROOT / "venv" / "bin" / "python").exists():
        print("Setting the dj-stripe peer up (about a minute) ...", flush=True)
        subprocess.run(["bash", str(PEER / "setup.sh")], check=True, capture_output=True,
                       env={**os.environ, "ROOT": str(PEER_ROOT)})
    print("Running the dj-stripe peer ...", flush=True)
    done = subprocess.run(["bash", str(PEER / "run.sh")], capture_output=True, text=True,
                          env={**os.environ, "ROOT": str(PEER_ROOT), "N": str(events), "CS": "1 4",
                               "TYPES": "invoice.finalized", "PORT": str(free_port()), "LS_PORT": str(free_port())})
    output = done.stdout + done.stderr
    found: dict[int, tuple[float, float, float]] = {}
    # webhook_load.py: "djstripe invoice.finalized: 2000/2000 ok (codes [200]), 80 events/s, p50 12.3 ms,
    # p99 20.1 ms, 1 senders" (the warm-up line is labelled "warmup")
    for line in output.splitlines():
        match = re.search(r"^djstripe .*?(\d+) events/s, p50 ([\d.]+) ms, p99 ([\d.]+) ms, (\d+) senders", line)
        if match:
            found[int(match.group(4))] = (float(match.group(1)), float(match.group(2)), float(match.group(3)))
    if not found:
        print("peer output not understood; its tail:\n" + output[-1500:])
    return found


def customer_of(body: bytes) -> str | None:
    import json

    return json.loads(body)["data"]["object"].get("customer")


def run_peer_realistic(sandbox, clock: str, workdir: Path, logs: Path, apps: int) -> dict[int, dict]:
    """dj-stripe against the same sandbox with the same five event types about the same sandbox objects:
    {senders: figures}. Two groups of ``apps`` apps: one month of their renewals to warm it up (dj-stripe
    then holds their customers, subscriptions, price, product and cards, as the portal's tables hold its
    apps), and the next month's measured, the first group from 1 sender, the second from 4."""
    from bench import peer as djstripe

    if not djstripe.available():
        print(f"(no peer scripts at {djstripe.PEER}: skipped)")
        return {}
    warm = renewals.month(sandbox, clock)
    customers = sorted({c for c in map(customer_of, warm) if c})
    groups = {1: set(customers[:apps]), 4: set(customers[apps:2 * apps])}
    chosen = groups[1] | groups[4]
    print(f"Running the dj-stripe peer against the sandbox (warm-up: a month of {len(chosen)} apps) ...", flush=True)
    server = djstripe.start(sandbox.url, workdir, free_port(), logs / "djstripe.log")
    found: dict[int, dict] = {}
    try:
        warming = [body for body in warm if customer_of(body) in chosen]
        warmed = server.send(warming, 4)
        print(f"  warm-up: {len(warming)} events, {warmed.rate:.0f}/s, {warmed.errors} errors", flush=True)
        measured = renewals.month(sandbox, clock)
        for senders, group in groups.items():
            bodies = [body for body in measured if customer_of(body) in group]
            sent = server.send(bodies, senders)
            stored = server.stored(bodies)
            found[senders] = {"rate": sent.rate, "p50": sent.percentile(0.5), "p99": sent.percentile(0.99),
                              "events": len(bodies), "errors": sent.errors, **stored}
            print(f"  dj-stripe, {senders} sender(s), {len(bodies)} realistic events: {sent.rate:.0f}/s"
                  f" (p50 {sent.percentile(0.5):.0f} ms, p99 {sent.percentile(0.99):.0f} ms), {sent.errors} errors,"
                  f" {stored['stored']} stored, {stored['failed']} failed", flush=True)
    finally:
        server.stop()
    return found


def customers_first(bodies: list[bytes], count: int) -> list[bytes]:
    """About ``count`` of ``bodies``: every event of as many customers as fit, in the original order (a steady
    trickle of whole renewals, not the first minutes of every one)."""
    import json

    keep: set[str] = set()
    chosen = 0
    by_customer: dict[str, int] = {}
    for body in bodies:
        customer = json.loads(body)["data"]["object"].get("customer")
        by_customer[customer] = by_customer.get(customer, 0) + 1
    for customer, events in by_customer.items():
        if chosen >= count:
            break
        keep.add(customer)
        chosen += events
    return [body for body in bodies if json.loads(body)["data"]["object"].get("customer") in keep]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sqlite", action="store_true", help="the README's default stack (SQLite) instead of PostgreSQL")
    parser.add_argument("--workers", default="1", help="comma-separated worker process counts, e.g. 1,2,4")
    parser.add_argument("--events", type=int, default=2000, help="cheap events per burst")
    parser.add_argument("--realistic", action="store_true",
                        help="a month of renewals of --apps of our apps, made by the sandbox, instead of cheap events")
    parser.add_argument("--apps", type=int, default=2000, help="apps seeded for --realistic (5 events each a month)")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--steady-rate", type=float, default=50.0)
    parser.add_argument("--steady-seconds", type=float, default=20.0)
    parser.add_argument("--peer", action="store_true",
                        help="run the dj-stripe peer in the same run: with --realistic against the same sandbox and"
                             " event types, otherwise (or with --peer-localstripe too) invoice.finalized from"
                             " localstripe as its own scripts do")
    parser.add_argument("--peer-apps", type=int, default=300, help="apps per sender count for the realistic peer")
    parser.add_argument("--peer-localstripe", action="store_true",
                        help="also the peer's own run (invoice.finalized re-fetched from localstripe)")
    parser.add_argument("--backlog", action="store_true",
                        help="send the burst before the workers start: applied/s is then the workers' own rate")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="bench-processing-"))
    logs = workdir / "logs"
    logs.mkdir()
    services: list[Service] = []
    sandbox = None
    print("load before:", uptime(), flush=True)
    try:
        redis = start_redis(workdir / "redis", log_path=logs / "redis.log")
        services.append(redis)
        if args.sqlite:
            database = f"sqlite:///{workdir / 'portal.sqlite3'}"
        else:
            postgres = start_postgres(Path(tempfile.mkdtemp(prefix="bench-processing-pg-")))
            services.append(postgres)
            database = postgres.url
        port = free_port()
        env = {
            "PORTAL_ENV": "production", "SECRET_KEY": "benchmark-secret-key-" + "x" * 32, "DATABASE_URL": database,
            "REDIS_URL": redis.url, "BILLING_GATEWAY_ENABLE_REAL": "1",
            "STRIPE_KERNEL_SECRET_KEY": "sk_test_benchmark_never_called", "STRIPE_KERNEL_WEBHOOK_SECRET": SECRET,
            "WEBHOOK_RATE_LIMIT": "10000000 per minute", "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
            "TRUSTED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING",
        }
        if args.realistic:
            from sandbox.testing import SandboxProcess

            # The portal's gateway is the sandbox, in test mode on the benchmark's clock, as in scripts/run.
            sandbox = SandboxProcess(str(workdir / "sandbox.sqlite3")).start()
            env.update(BILLING_GATEWAY_ENABLE_REAL="0", SANDBOX_URL=sandbox.url)
            env.pop("STRIPE_KERNEL_SECRET_KEY")
        subprocess.run([PYTHON, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT,
                       env={**os.environ, **env}, check=True, capture_output=True)
        engine = create_engine(database)
        seeded = None
        if sandbox is not None:
            seeded = renewals.seed(sandbox, engine, args.apps)
            env["STRIPE_TEST_CLOCK"] = seeded.clock
            print(f"  seeded {seeded.apps} apps with live subscriptions (sandbox and portal) in"
                  f" {seeded.seconds:.1f} s", flush=True)
        services.append(start_web(env, port, logs / "web.log", workers=2, threads=4, probe="/healthz"))
        stack = "SQLite" if args.sqlite else "PostgreSQL"
        kind = "realistic" if args.realistic else "cheap"
        rows = []
        workers: list[Service] = []
        for count in counts:
            if sandbox is not None:
                began = time.monotonic()
                bodies = renewals.month(sandbox, seeded.clock)
                print(f"  the sandbox renewed {args.apps} subscriptions: {len(bodies)} events"
                      f" ({time.monotonic() - began:.1f} s)", flush=True)
            else:
                bodies = prepare(args.events, f"burst{count}")
            since = None
            if args.backlog:
                floor = high_water(engine)
                acked = send_all(port, PATH, bodies, args.senders)
                since = time.time()
                workers = start_workers(env, count, logs)  # includes their start-up (imports): a bit pessimistic
                services.extend(workers)  # stopped on the way out, whatever happens
            else:
                workers = start_workers(env, count, logs)
                services.extend(workers)
                time.sleep(2)  # imports and the first connection
                floor = high_water(engine)
                send_all(port, PATH, prepare(200, f"warm{count}"), args.senders)
                figures(engine, floor, 200)
                floor = high_water(engine)
                acked = send_all(port, PATH, bodies, args.senders)
            # The acknowledgement with one sender while the workers are busy with the burst's backlog.
            busy = send_all(port, PATH, prepare(300, f"busy{count}"), 1)
            backlog = waiting_above(engine, 0)
            result = figures(engine, floor, len(bodies) + 300, since=since)
            busy_acks = sorted(busy.latencies_ms)
            result.update(workers=count, ack_rate=acked.rate, errors=acked.errors + busy.errors,
                          busy_p50=busy_acks[len(busy_acks) // 2],
                          busy_p99=busy_acks[int(0.99 * (len(busy_acks) - 1))], busy_backlog=backlog)
            if sandbox is not None:
                result.update(renewals.end_state(engine, bodies))
            rows.append(result)
            print(f"  {stack}, {count} worker(s), {len(bodies)} {kind} events: applied {result['rate']:.0f}/s,"
                  f" all in {result['span']:.1f} s, receive->applied p50 {result['p50']:.0f} ms"
                  f" p99 {result['p99']:.0f} ms, lost {result['lost']}, doubled {result['doubled']}"
                  + (f"; invoices paid {result['paid']}/{result['invoices']}, payments"
                     f" {result['payments']}/{result['intents']}" if sandbox is not None else ""), flush=True)
            print(f"    one sender while busy (300 cheap events, {result['busy_backlog']} still waiting after them):"
                  f" ack p50 {result['busy_p50']:.1f} ms, p99 {result['busy_p99']:.1f} ms", flush=True)
            if count != counts[-1]:
                for worker in workers:
                    worker.stop()
        if sandbox is not None:
            calm_bodies = customers_first(renewals.month(sandbox, seeded.clock),
                                          int(args.steady_rate * args.steady_seconds))
        else:
            calm_bodies = prepare(int(args.steady_rate * args.steady_seconds), "steady")
        floor = high_water(engine)
        acks = steady(port, calm_bodies, args.steady_rate)
        calm = figures(engine, floor, len(acks))
        acks.sort()
        for worker in workers:
            worker.stop()
        like = run_peer_realistic(sandbox, seeded.clock, workdir, logs, args.peer_apps) \
            if args.peer and sandbox is not None else {}
        peer = run_peer(2000) if (args.peer and sandbox is None) or args.peer_localstripe else {}
    finally:
        for service in reversed(services):
            service.stop()
        if sandbox is not None:
            sandbox.stop()
    print("load after:", uptime())

    what = (f"a month of renewals of {args.apps} apps (invoice.created/finalized/paid,"
            " customer.subscription.updated, payment_intent.succeeded; our objects)" if args.realistic
            else f"burst of {args.events} cheap events (invoice.paid, not ours)")
    print(f"\n{stack}; {what} from {args.senders} senders; {os.cpu_count()} CPUs shared with the load generator\n")
    print(f"{'workers':>7} | {'events':>6} | {'acked/s':>8} | {'applied/s':>9} | {'all in s':>8} | {'p50 ms':>7} |"
          f" {'p99 ms':>7} | {'lost':>4} | {'doubled':>7} | {'failed':>6} | {'>5 s':>5}"
          + (" | invoices paid | payments" if args.realistic else ""))
    for row in rows:
        print(f"{row['workers']:>7} | {row['sent']:>6} | {row['ack_rate']:8.0f} | {row['rate']:9.0f} |"
              f" {row['span']:8.1f} | {row['p50']:7.0f} | {row['p99']:7.0f} | {row['lost']:>4} |"
              f" {row['doubled']:>7} | {row['failed']:>6} | {row['over_5s']:>5}"
              + (f" | {row['paid']:>6}/{row['invoices']:<6} | {row['payments']}/{row['intents']}"
                 if args.realistic else ""))
    print(f"\nSteady {args.steady_rate:.0f} events/s, {len(acks)} {kind} events ({counts[-1]} worker(s)):"
          f" receive->applied p50 {calm['p50']:.0f} ms, p99 {calm['p99']:.0f} ms, max {calm['max']:.0f} ms,"
          f" over 5 s: {calm['over_5s']}; acknowledgement p50 {acks[len(acks) // 2]:.1f} ms,"
          f" p99 {acks[int(0.99 * (len(acks) - 1))]:.1f} ms; lost {calm['lost']}, doubled {calm['doubled']}")
    ours = max(row["rate"] for row in rows)
    if like:
        print("\ndj-stripe 2.11 peer, same run, against the same sandbox (the same five event types about the"
              " same sandbox objects, each re-fetched and synced in the request; gunicorn 2 x 4, SQLite WAL):")
        for senders, found in sorted(like.items()):
            print(f"  {senders} sender(s): {found['events']} events, {found['rate']:.0f} applied/s (p50"
                  f" {found['p50']:.0f} ms, p99 {found['p99']:.0f} ms), errors {found['errors']},"
                  f" failed {found['failed']}, stored {found['stored']}")
        best = max(found["rate"] for found in like.values())
        print(f"Portal (realistic, best of {counts}) / peer (best, same events), applied events/s:"
              f" {ours / best:.1f}x")
    if peer:
        print("\ndj-stripe 2.11 peer, same run (invoice.finalized re-fetched from localstripe and applied in the"
              " request, gunicorn 2 x 4, SQLite WAL):")
        for senders, (rate, p50, p99) in sorted(peer.items()):
            print(f"  {senders} sender(s): {rate:.0f} applied/s (p50 {p50:.0f} ms, p99 {p99:.0f} ms)")
        best = max(rate for rate, _, _ in peer.values())
        print(f"Portal ({kind}, best of {counts}) / peer (best), applied events/s: {ours / best:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

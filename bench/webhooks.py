"""Webhook acknowledgement benchmark: the portal as in production against a bare endpoint, same run, same machine.

    .venv/bin/python -m bench.webhooks [--events 3000] [--concurrency 1,4,32] [--workers 2] [--threads 4] [--worker]

Starts PostgreSQL and Redis (scripts/services.py), migrates a fresh database, then
serves, one after the other under the same gunicorn settings:

* the portal (``wsgi:app``, PORTAL_ENV=production, real-Stripe mode with a dummy
  key that is never called): its webhook path (portal/webhooks/endpoint.py, plain
  WSGI ahead of Flask): size and signature checks, the rate limit (one Redis round
  trip), one INSERT, 200;
* the bare endpoint (``bench/webhooks_bare.py``): signature check and one INSERT
  into the same PostgreSQL table, nothing else: the practical limit of the stack.

For each concurrency it sends N signed ``invoice.paid`` events (a realistic 3 KB
payload, each a new event id) from that many concurrent senders on keep-alive
connections, after a warm-up, and prints events/s and p50/p99 acknowledgement
latency for both, and the ratios. By default no worker runs during the measurement
(the answer never waits for one): the events wait in ``processed_webhooks``. With
``--worker`` a worker applying them (``python -m jobs.worker --events-only``) runs
during the measurement, as in production, and takes its share of the CPU and of
the database (bench/processing.py measures the applying itself). The load generator shares the machine's cores with the servers,
as in the reference figures in /work/shared/FACTS.md. Exit status 0 when every
target is met: throughput >= 60% of the bare endpoint's, p99 <= 2x the bare p99 at
each concurrency, p99 < 10 ms with one sender.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from billing.webhooks.signature import header_for
from scripts.services import PYTHON, ROOT, Service, free_port, http_ok, start_postgres, start_redis, start_web, \
    wait_until

SECRET = "whsec_benchmark_only"
WARMUP = 300


@dataclass
class Result:
    events: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def invoice_paid(event_id: str, n: int) -> dict:
    """An ``invoice.paid`` event shaped like the sandbox's (about 3 KB)."""
    created = int(time.time())
    invoice_id = f"in_bench{n:08d}"
    return {
        "id": event_id, "object": "event", "api_version": "2026-10-28.endive", "created": created,
        "livemode": False, "pending_webhooks": 1, "type": "invoice.paid",
        "request": {"id": f"req_bench{n}", "idempotency_key": None},
        "data": {"object": {
            "id": invoice_id, "object": "invoice", "account_country": "BR", "account_name": "Kernel",
            "amount_due": 9900, "amount_paid": 9900, "amount_remaining": 0, "amount_shipping": 0,
            "attempt_count": 1, "attempted": True, "auto_advance": False, "billing_reason": "subscription_cycle",
            "collection_method": "charge_automatically", "created": created, "currency": "brl",
            "customer": f"cus_bench{n % 500:05d}", "customer_email": "owner@example.test",
            "customer_name": "Bench App", "description": None, "hosted_invoice_url":
                f"https://invoice.stripe.com/i/acct_bench/{invoice_id}", "invoice_pdf":
                f"https://pay.stripe.com/invoice/acct_bench/{invoice_id}/pdf", "livemode": False,
            "number": f"BENCH-{n:06d}", "paid": True, "period_end": created, "period_start": created - 2678400,
            "status": "paid", "status_transitions": {"finalized_at": created, "paid_at": created,
                                                    "marked_uncollectible_at": None, "voided_at": None},
            "subtotal": 9900, "total": 9900, "total_excluding_tax": 9900,
            "parent": {"type": "subscription_details", "quote_details": None,
                       "subscription_details": {"metadata": {"app_id": str(n % 500)},
                                                "subscription": f"sub_bench{n % 500:05d}"}},
            "lines": {"object": "list", "has_more": False, "url": f"/v1/invoices/{invoice_id}/lines", "data": [{
                "id": f"il_bench{n}", "object": "line_item", "amount": 9900, "currency": "brl",
                "description": "1 × Kernel Pro (at R$ 99.00 / month)", "discountable": True, "livemode": False,
                "metadata": {}, "period": {"end": created + 2678400, "start": created},
                "pricing": {"type": "price_details", "price_details": {"price": "price_bench_pro",
                                                                       "product": "kernel_pro"},
                            "unit_amount_decimal": "9900"},
                "parent": {"type": "subscription_item_details", "subscription_item_details": {
                    "invoice_item": None, "proration": False, "proration_details": {"credited_items": None},
                    "subscription": f"sub_bench{n % 500:05d}", "subscription_item": f"si_bench{n % 500:05d}"}},
                "quantity": 1, "taxes": []}]},
            "payments": {"object": "list", "has_more": False, "data": [{
                "id": f"inpay_bench{n}", "object": "invoice_payment", "amount_paid": 9900, "currency": "brl",
                "invoice": invoice_id, "is_default": True, "livemode": False, "status": "paid",
                "payment": {"type": "payment_intent", "payment_intent": f"pi_bench{n:08d}"}}]},
            "metadata": {}, "webhooks_delivered_at": created,
        }},
    }


def prepare(count: int, label: str) -> list[bytes]:
    bodies = []
    for n in range(count):
        bodies.append(json.dumps(invoice_paid(f"evt_bench_{label}_{n:07d}", n), separators=(",", ":")).encode())
    return bodies


def send_all(port: int, path: str, bodies: list[bytes], concurrency: int, secret: str = SECRET) -> Result:
    """POST every body, ``concurrency`` senders at a time, each on its own keep-alive connection."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    chunks = [bodies[i::concurrency] for i in range(concurrency)]
    # Signed just before sending, as Stripe does, so a long run never trips the 300 s tolerance.
    signed = [[(body, header_for(secret, body)) for body in chunk] for chunk in chunks]
    start_gate = threading.Barrier(concurrency + 1)

    def sender(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = latencies[index]
        start_gate.wait()
        for body, signature in signed[index]:
            began = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers={
                    "Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature,
                    "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine.append((time.perf_counter() - began) * 1000)
            if not ok:
                errors[index] += 1
        connection.close()

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return Result(len(bodies), elapsed, [x for sub in latencies for x in sub], sum(errors))


def start_gunicorn(module: str, env: dict, port: int, log: Path, workers: int, threads: int) -> Service:
    if module == "wsgi:app":
        return start_web(env, port, log, workers=workers, threads=threads, probe="/healthz")  # no sandbox here
    # The same command line as scripts/services.start_web, for another WSGI module.
    handle = open(log, "ab")
    process = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads",
         str(threads), "--access-logfile", "-", module],
        cwd=ROOT, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    handle.close()
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(url + "/"), "the bare endpoint", process=process, timeout=60)
    return Service("bare", process, url=url)


def start_worker(env: dict, log: Path) -> Service:
    handle = open(log, "ab")
    process = subprocess.Popen([PYTHON, "-m", "jobs.worker", "--events-only"], cwd=ROOT, env={**os.environ, **env},
                               stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    handle.close()
    return Service("worker", process)


def measure(port: int, path: str, concurrency: int, bodies: list[bytes]) -> Result:
    result = send_all(port, path, bodies, concurrency)
    if result.errors:
        print(f"  !! {result.errors} of {result.events} requests did not answer 200", flush=True)
    return result


def combine(parts: list[Result]) -> Result:
    return Result(sum(p.events for p in parts), sum(p.seconds for p in parts),
                  [x for p in parts for x in p.latencies_ms], sum(p.errors for p in parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000, help="events per measurement (after a warm-up)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="the events are sent in this many alternating bare/portal rounds, so that other load on "
                             "the machine weighs on both alike")
    parser.add_argument("--concurrency", default="1,4,32", help="comma-separated numbers of concurrent senders")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (both servers)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (both servers)")
    parser.add_argument("--worker", action="store_true",
                        help="run a worker applying the events during the measurement")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    logs = workdir / "logs"
    logs.mkdir()
    services: list[Service] = []
    try:
        print("Starting PostgreSQL and Redis ...", flush=True)
        # Its own folder, not under ``workdir``: PostgreSQL runs as ``postgres`` and cannot enter a root-only one.
        postgres = start_postgres(Path(tempfile.mkdtemp(prefix="bench-webhooks-pg-")))
        services.append(postgres)
        redis = start_redis(workdir / "redis", log_path=logs / "redis.log")
        services.append(redis)
        env = {
            "PORTAL_ENV": "production",
            "SECRET_KEY": "benchmark-secret-key-" + "x" * 32,
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis.url,
            "BILLING_GATEWAY_ENABLE_REAL": "1",
            "STRIPE_KERNEL_SECRET_KEY": "sk_test_benchmark_never_called",
            "STRIPE_KERNEL_WEBHOOK_SECRET": SECRET,
            # Per sender address; the load generator is one address sending far faster than Stripe's
            # dozen, so the limit is raised here. The limiter still runs (and costs its Redis round trip).
            "WEBHOOK_RATE_LIMIT": "10000000 per minute",
            "BARE_CONNINFO": postgres.url.replace("postgresql+psycopg://", "postgresql://"),
            "PORTAL_BASE_URL": "http://127.0.0.1",  # production refuses to start without it (links in notices)
        }
        subprocess.run([PYTHON, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT,
                       env={**os.environ, **env}, check=True, capture_output=True)

        targets = {"bare": ("bench.webhooks_bare:app", "/"), "portal": ("wsgi:app", "/webhooks/kernel/stripe")}
        ports = {}
        for name, (module, _) in targets.items():
            ports[name] = free_port()
            print(f"Serving {name} ({module}) with gunicorn, {args.workers} workers x {args.threads} threads",
                  flush=True)
            services.append(start_gunicorn(module, env, ports[name], logs / f"{name}.log", args.workers,
                                           args.threads))

        if args.worker:
            services.append(start_worker(env, logs / "worker.log"))
            print("A worker applies the events during the measurement", flush=True)

        results: dict[tuple[str, int], Result] = {}
        per_round = max(1, args.events // args.rounds)
        for concurrency in levels:
            parts: dict[str, list[Result]] = {"bare": [], "portal": []}
            for name, (_, path) in targets.items():  # warm-up: connections, statement caches, JIT-free Python
                measure(ports[name], path, concurrency, prepare(WARMUP, f"{name}_warm{concurrency}"))
            for round_ in range(args.rounds):
                order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
                for name in order:
                    bodies = prepare(per_round, f"{name}_c{concurrency}_r{round_}")
                    parts[name].append(measure(ports[name], targets[name][1], concurrency, bodies))
            for name in targets:
                r = results[(name, concurrency)] = combine(parts[name])
                print(f"  {name:6s} c={concurrency:<3d} {r.rate:8.0f} events/s  p50 {r.percentile(.5):6.2f} ms"
                      f"  p99 {r.percentile(.99):7.2f} ms", flush=True)

        return report(results, levels, args)
    finally:
        for service in reversed(services):
            service.stop()


def report(results: dict, levels: list[int], args) -> int:
    print(f"\nN = {args.events} events per measurement ({args.rounds} alternating rounds), gunicorn {args.workers}"
          f" workers x {args.threads} threads, {os.cpu_count()} CPUs shared with the load generator\n")
    header = (f"{'senders':>7} | {'bare ev/s':>9} {'p50':>7} {'p99':>7} | {'portal ev/s':>11} {'p50':>7} {'p99':>7}"
              f" | {'thrpt':>6} {'p99 x':>6}")
    print(header)
    print("-" * len(header))
    all_met = True
    for c in levels:
        bare, portal = results[("bare", c)], results[("portal", c)]
        ratio = portal.rate / bare.rate
        p99_ratio = portal.percentile(.99) / bare.percentile(.99)
        print(f"{c:>7} | {bare.rate:9.0f} {bare.percentile(.5):6.2f}ms {bare.percentile(.99):6.2f}ms | "
              f"{portal.rate:11.0f} {portal.percentile(.5):6.2f}ms {portal.percentile(.99):6.2f}ms | "
              f"{ratio:6.0%} {p99_ratio:5.2f}x")
        met = ratio >= 0.6 and p99_ratio <= 2.0 and (c != 1 or portal.percentile(.99) < 10)
        all_met &= met and not portal.errors and not bare.errors
    print("\nTargets: throughput >= 60% of bare, p99 <= 2x bare p99 at each concurrency, p99 < 10 ms with 1 sender:",
          "MET" if all_met else "NOT MET")
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: reconcile 1,000, 10,000 and 100,000 subscriptions (one invoice each) against the sandbox.

    .venv/bin/python -m bench.reconciliation [--sizes 1000,10000,100000]

For each size: the sandbox is reset and bulk-seeded, our tables get the matching
apps, subscriptions and invoices (a clean pair, inserted in bulk; not timed), then
``billing.reconciliation.reconcile`` runs in a fresh child process so its time and
its peak memory are its own. Printed per size: wall time, the CPU time of the
reconciling process and of the sandbox during the run, Stripe API calls made (our
count, and the requests the sandbox served), objects compared per call, peak
resident memory of the child and how much of it the run added.

Targets (issue #7): API calls <= objects / 90; time and memory growing no faster
than linearly; 100,000 subscriptions in under two minutes on a 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from billing.gateway import StripeGateway  # noqa: E402
from billing.money import Money  # noqa: E402

SIZES = (1_000, 10_000, 100_000)
INSERT_CHUNK = 5_000


def portal(database_url: str, sandbox_url: str):
    """The portal app on its own database, following the sandbox's clock, with no Redis needed."""
    os.environ.setdefault("PORTAL_ENV", "test")
    from portal import create_app

    return create_app({
        "TESTING": True, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": database_url, "SANDBOX_URL": sandbox_url,
        "RATELIMIT_ENABLED": False, "RATELIMIT_STORAGE_URI": "memory://", "RQ_ASYNC": False,
        "BILLING_CLOCK_FOLLOWS_GATEWAY": True,
    })


def seed(sandbox, database_url: str, size: int) -> dict:
    """A clean pair: ``size`` subscriptions with one paid invoice each, in the sandbox and in our tables."""
    from billing.models import App, AppSubscription, KernelInvoice
    from billing.plans import ensure_plans, plan_by_code
    from billing.db import Base
    from portal.extensions import db

    app = portal(database_url, sandbox.url)
    gateway = StripeGateway.for_sandbox(sandbox.url)
    with app.app_context():
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        ensure_plans(db.session)
        pro = plan_by_code(db.session, "pro")
        pro.stripe_price_id = gateway.ensure_price(plan_code="pro", name="Pro", amount=Money(9900, "BRL"))
        db.session.commit()
        plan_id, price = pro.id, pro.stripe_price_id

        started = time.perf_counter()
        sandbox.bulk_seed(size, price=price, invoices_per_subscription=1)
        seeded_stripe = time.perf_counter() - started

        # Our side, from what Stripe holds (listing is setup here, not the measured run).
        started = time.perf_counter()
        subscriptions = [s for page in gateway.iter_pages(lambda c: gateway.list_subscriptions(starting_after=c))
                         for s in page]
        invoices = [i for page in gateway.iter_pages(lambda c: gateway.list_invoices(starting_after=c)) for i in page]
        apps = [{"id": n + 1, "name": f"Bench app {n}", "slug": f"bench-{n}", "status": "active",
                 "stripe_customer_id": s.customer} for n, s in enumerate(subscriptions)]
        app_of = {row["stripe_customer_id"]: row["id"] for row in apps}
        subs = [{"id": n + 1, "app_id": app_of[s.customer], "plan_id": plan_id, "status": s.status,
                 "stripe_customer_id": s.customer, "stripe_subscription_id": s.id,
                 "current_period_start": s.current_period_start, "current_period_end": s.current_period_end,
                 "cancel_at_period_end": False, "stripe_watermark": s.created, "created_at": _utc(s.created)}
                for n, s in enumerate(subscriptions)]
        sub_of = {row["stripe_subscription_id"]: row["id"] for row in subs}
        invs = [{"app_id": app_of[i.customer], "subscription_id": sub_of.get(i.subscription),
                 "stripe_invoice_id": i.id, "number": i.number, "status": i.status, "amount_due": i.amount_due,
                 "amount_paid": i.amount_paid, "amount_remaining": i.amount_remaining, "currency": i.currency,
                 "attempt_count": i.attempt_count, "paid_at": i.paid_at, "stripe_watermark": i.created,
                 "created_at": _utc(i.created)} for i in invoices]
        for table, rows in ((App, apps), (AppSubscription, subs), (KernelInvoice, invs)):
            for start in range(0, len(rows), INSERT_CHUNK):
                db.session.execute(insert(table), rows[start:start + INSERT_CHUNK])
        db.session.commit()
        seeded_ours = time.perf_counter() - started
        db.engine.dispose()
    return {"stripe_seconds": round(seeded_stripe, 1), "ours_seconds": round(seeded_ours, 1),
            "subscriptions": len(subscriptions), "invoices": len(invoices)}


def _utc(unix: int):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(unix, tz=timezone.utc)


def measure(database_url: str, sandbox_url: str) -> dict:
    """The measured part, run in a child process: one reconciliation, its time and its memory."""
    from billing.reconciliation import reconcile
    from portal.extensions import db
    from portal.payments import gateway

    app = portal(database_url, sandbox_url)
    with app.app_context():
        baseline = peak_rss_kb()
        started = time.perf_counter()
        cpu_started = resource.getrusage(resource.RUSAGE_SELF)
        run = reconcile(db.session, gateway(), trigger="bench")
        seconds = time.perf_counter() - started
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        peak = peak_rss_kb()
        return {"seconds": round(seconds, 2), "api_calls": run.api_calls,
                "cpu_seconds": round(cpu.ru_utime - cpu_started.ru_utime + cpu.ru_stime - cpu_started.ru_stime, 1),
                "subscriptions": run.subscriptions_checked, "invoices": run.invoices_checked,
                "divergences": run.divergence_count, "peak_rss_mb": round(peak / 1024, 1),
                "added_rss_mb": round((peak - baseline) / 1024, 1)}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (to show where the wall time goes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kb() -> int:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries that over from the parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated subscription counts")
    parser.add_argument("--measure", nargs=2, metavar=("DATABASE_URL", "SANDBOX_URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return

    from sandbox.testing import SandboxProcess

    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"Reconciliation benchmark on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    header = (f"{'subscriptions':>13} {'objects':>8} {'seconds':>8} {'CPU s':>6} {'sandbox CPU s':>13} "
              f"{'API calls':>9} {'served':>7} "
              f"{'objects/call':>12} {'peak RSS MB':>11} {'added MB':>9} {'divergences':>11}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-reconciliation-") as workdir, \
            SandboxProcess(str(Path(workdir) / "sandbox.sqlite3")) as sandbox:
        database_url = f"sqlite:///{Path(workdir) / 'portal.sqlite3'}"
        for size in sizes:
            sandbox.reset()
            seeded = seed(sandbox, database_url, size)
            sandbox.clear_stats()
            sandbox_cpu = cpu_seconds(sandbox.process.pid)
            child = subprocess.run([sys.executable, "-m", "bench.reconciliation", "--measure", database_url,
                                    sandbox.url], cwd=ROOT, capture_output=True, text=True,
                                   env={**os.environ, "PORTAL_ENV": "test"})
            if child.returncode != 0:
                sys.exit(f"measuring {size} failed:\n{child.stderr[-3000:]}")
            result = json.loads(child.stdout.strip().splitlines()[-1])
            result["sandbox_cpu_seconds"] = round(cpu_seconds(sandbox.process.pid) - sandbox_cpu, 1)
            served = sandbox.stats()["total"]  # every /v1 request, the clock reads included
            objects = result["subscriptions"] + result["invoices"]
            rows.append((size, objects, result, served, seeded))
            print(f"  seeded {size}: sandbox {seeded['stripe_seconds']} s, ours {seeded['ours_seconds']} s",
                  file=sys.stderr)
    print(header)
    for size, objects, result, served, _seeded in rows:
        print(f"{size:>13,} {objects:>8,} {result['seconds']:>8.2f} {result['cpu_seconds']:>6.1f} "
              f"{result['sandbox_cpu_seconds']:>13.1f} "
              f"{result['api_calls']:>9,} {served:>7,} "
              f"{objects / max(result['api_calls'], 1):>12.1f} {result['peak_rss_mb']:>11.1f} "
              f"{result['added_rss_mb']:>9.1f} {result['divergences']:>11}")


if __name__ == "__main__":
    main()

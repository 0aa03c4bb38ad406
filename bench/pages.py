"""Owner pages under a small crowd, and the plan actions one owner waits for (issue #16, findings 12 and 13).

    .venv/bin/python -m bench.pages [--users 20] [--seconds 20] [--actions 5]
                                    [--workers N] [--threads N] [--keepalive-requests N]

Starts the README's default stack as ``scripts/run`` does (``scripts/services.py``): Redis, the
Stripe sandbox (its webhooks pointed at the portal), an RQ worker and gunicorn with
gunicorn.conf.py's settings (or the flags given), on a fresh SQLite file. Seeds ``--users`` owners,
each with an app on Pro in the sandbox and six paid invoices (the sandbox's ``bulk_seed``, mirrored
in our tables, not timed) and two notices, and signs every owner in through the login form.

Then, in one run:

* **baseline**: one user (``/healthz``, then the owner pages one after the other) for a few seconds;
* **crowd**: ``--users`` signed-in owners at once, each requesting its next page as soon as the
  last one answered (dashboard, billing, invoices, invoice detail, notices, in a loop) for
  ``--seconds``; per page p50 / p95 / max and pages/s, beside the one-user figures; each gunicorn
  worker's share of a core meanwhile, and the CPU a page cost the workers;
* **floor**: the same number of users on ``/healthz`` (no session, database or template);
* **actions**: ``--actions`` fresh apps of one more owner go through subscribe -> Checkout,
  back from Checkout, upgrade preview and confirm, schedule and undo a downgrade, cancel and
  resume, alone on the server. Each action is timed as a browser waits for it: the POST, the
  redirect and the page it lands on (the Checkout page, for subscribe). Median and max per action,
  beside the billing page's own load in the same run.

The users of the baseline, crowd and floor are driven by ``bench.crowd`` (asyncio, raw HTTP/1.1 on
kept-alive connections, in a process of its own), which prints its own CPU use: a few per cent of a
core, so the server, not the client, is what is measured. ``uptime`` is printed before and after:
the machine is shared, so only the side-by-side figures of one run compare.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from scripts.services import (
    PYTHON, ROOT, Service, free_port, start_redis, start_sandbox, start_web, start_worker,
)

PASSWORD = "bench-password-1"
WEBHOOK_SECRET = "whsec_bench_pages_only"
INVOICES_PER_OWNER = 6
CROWD_PAGES = ("dashboard", "billing", "invoices", "invoice", "notices")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# ---------------------------------------------------------------- a minimal browser


class _Forms(HTMLParser):
    """Every form's action and its hidden inputs (what a browser would submit)."""

    def __init__(self):
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self._current: dict[str, str] | None = None

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "form":
            self._current = {}
            self.forms.append((values.get("action") or "", self._current))
        elif tag == "input" and self._current is not None and values.get("type") == "hidden":
            self._current[values.get("name") or ""] = values.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def forms_in(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def form_for(html: str, action_ends: str) -> tuple[str, dict[str, str]]:
    for action, fields in forms_in(html):
        if urlsplit(action).path.endswith(action_ends):
            return action, fields
    flashes = re.findall(r'class="flash[^"]*"[^>]*>(.*?)<', html, re.S)
    raise RuntimeError(f"no form posting to …{action_ends} on the page (messages: {flashes})")


@dataclass
class Answer:
    status: int
    location: str
    body: str
    ms: float


@dataclass
class Browser:
    """One signed-in user: a keep-alive connection and its cookies, like a browser tab."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    _connection: http.client.HTTPConnection | None = None

    def _send(self, method: str, path: str, body: bytes | None = None) -> Answer:
        headers = {"Accept-Language": "pt-BR", "Host": f"127.0.0.1:{self.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"http://127.0.0.1:{self.port}"
            headers["Referer"] = f"http://127.0.0.1:{self.port}{path}"
        for retry in (False, True):
            if self._connection is None:
                self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            started = time.perf_counter()
            try:
                self._connection.request(method, path, body=body, headers=headers)
                response = self._connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: a browser reconnects and asks again.
                self._connection.close()
                self._connection = None
                if retry:
                    raise
                continue
            ms = (time.perf_counter() - started) * 1000
            for header in response.msg.get_all("Set-Cookie") or []:
                cookie = SimpleCookie()
                cookie.load(header)
                for name, morsel in cookie.items():
                    self.cookies[name] = morsel.value
            if response.getheader("Connection", "").lower() == "close":
                self._connection.close()
                self._connection = None
            return Answer(response.status, response.getheader("Location") or "", data.decode("utf-8", "replace"), ms)
        raise AssertionError("unreachable")

    def get(self, path: str) -> Answer:
        return self._send("GET", path)

    def post(self, path: str, fields: dict[str, str]) -> Answer:
        return self._send("POST", path, urlencode(fields).encode())

    def post_and_follow(self, path: str, fields: dict[str, str]) -> Answer:
        """The POST, its redirect and the page it lands on, timed together (what the user waits for)."""
        started = time.perf_counter()
        answer = self.post(path, fields)
        if answer.status not in (302, 303):
            raise RuntimeError(f"POST {path} answered {answer.status}: {answer.body[:300]}")
        page = self.get(_local(answer.location))
        page.ms = (time.perf_counter() - started) * 1000
        return page

    def sign_in(self, email: str) -> None:
        page = self.get("/login")
        fields = next(f for action, f in forms_in(page.body) if "csrf_token" in f and "logout" not in action)
        answer = self.post("/login", {**fields, "email": email, "password": PASSWORD})
        if answer.status != 302:
            raise RuntimeError(f"{email} could not sign in ({answer.status})")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# ---------------------------------------------------------------- seeding (setup, not timed)


def seed(env: dict, sandbox_url: str, owners: int, action_apps: int) -> dict:
    """``owners`` owners, each with an app on Pro with paid invoices and two notices; one more owner with
    ``action_apps`` apps on Free for the actions. Runs in a child process: the portal's own models and
    settings, and nothing of it stays in this process."""
    code = f"""
import json
from bench.pages import _seed
print(json.dumps(_seed({owners}, {action_apps}, {sandbox_url!r})))
"""
    done = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _seed(owners: int, action_apps: int, sandbox_url: str) -> dict:
    from sqlalchemy import insert, select

    from billing.gateway import StripeGateway
    from billing.models import App, AppSubscription, KernelInvoice, OutboxMessage, OutboxStatus, Role, User
    from billing.plans import plan_by_code
    from billing.states import SubscriptionStatus
    from portal import create_app
    from portal.auth.passwords import hash_password
    from portal.extensions import db
    from sandbox.testing import SandboxControl

    app = create_app({"RECORD_GATEWAY_MODE": False})
    gateway = StripeGateway.for_sandbox(sandbox_url)
    with app.app_context():
        pro = plan_by_code(db.session, "pro")
        SandboxControl(sandbox_url).bulk_seed(owners, price=pro.stripe_price_id,
                                              invoices_per_subscription=INVOICES_PER_OWNER)
        subscriptions = [s for page in gateway.iter_pages(lambda c: gateway.list_subscriptions(starting_after=c))
                         for s in page]
        invoices = [i for page in gateway.iter_pages(lambda c: gateway.list_invoices(starting_after=c))
                    for i in page]
        password = hash_password(PASSWORD)  # one hash for everyone: the seed is not what is measured

        def utc(unix: int) -> datetime:
            return datetime.fromtimestamp(unix, tz=timezone.utc)

        result: dict = {"owners": [], "actions": {}}
        app_of: dict[str, App] = {}
        for index, remote in enumerate(subscriptions):
            user = User(email=f"owner{index}@bench.test", name=f"Owner {index}", role=Role.OWNER,
                        password_hash=password)
            tenant = App(name=f"Bench app {index}", slug=f"bench-{index}", billing_email=user.email,
                         stripe_customer_id=remote.customer)
            tenant.owners.append(user)
            db.session.add(tenant)
            db.session.flush()
            db.session.add(AppSubscription(
                app_id=tenant.id, plan_id=pro.id, status=SubscriptionStatus(remote.status), stripe_customer_id=remote.customer,
                stripe_subscription_id=remote.id, current_period_start=remote.current_period_start,
                current_period_end=remote.current_period_end, cancel_at_period_end=False,
                stripe_watermark=remote.created, created_at=utc(remote.created)))
            app_of[remote.customer] = tenant
        db.session.flush()
        sub_of = {s.stripe_subscription_id: s.id for s in db.session.scalars(select(AppSubscription))}
        db.session.execute(insert(KernelInvoice), [
            {"app_id": app_of[i.customer].id, "subscription_id": sub_of.get(i.subscription),
             "stripe_invoice_id": i.id, "number": i.number, "status": i.status, "amount_due": i.amount_due,
             "amount_paid": i.amount_paid, "amount_remaining": i.amount_remaining, "currency": i.currency,
             "attempt_count": i.attempt_count, "paid_at": i.paid_at, "stripe_watermark": i.created,
             "created_at": utc(i.created)} for i in invoices])
        for tenant in app_of.values():
            for n in range(2):
                db.session.add(OutboxMessage(app_id=tenant.id, to_email=tenant.billing_email, kind="bench",
                                             subject=f"Notice {n}", body="A notice seeded by the benchmark.",
                                             dedupe_key=f"bench:{tenant.id}:{n}", status=OutboxStatus.SENT))
        acting = User(email="actions@bench.test", name="Actions", role=Role.OWNER, password_hash=password)
        db.session.add(acting)
        for n in range(action_apps):
            tenant = App(name=f"Action app {n}", slug=f"action-{n}", billing_email=acting.email)
            tenant.owners.append(acting)
            db.session.add(tenant)
        db.session.commit()
        for tenant in app_of.values():
            first = db.session.scalar(select(KernelInvoice.id).where(KernelInvoice.app_id == tenant.id)
                                      .order_by(KernelInvoice.id))
            result["owners"].append({"email": tenant.billing_email, "app": tenant.id, "invoice": first})
        result["actions"] = {"email": acting.email,
                             "apps": list(db.session.scalars(select(App.id).where(App.slug.like("action-%"))
                                                             .order_by(App.id)))}
    return result


# ---------------------------------------------------------------- the crowd


def owner_paths(owner: dict) -> dict[str, str]:
    app = owner["app"]
    return {"dashboard": "/dashboard", "billing": f"/apps/{app}/billing", "invoices": f"/apps/{app}/invoices",
            "invoice": f"/apps/{app}/invoices/{owner['invoice']}", "notices": f"/apps/{app}/notices"}


def browse(browsers: list[tuple[Browser, dict[str, str]]], seconds: float, pages=CROWD_PAGES) -> dict[str, list[float]]:
    """Each browser requests its pages in a loop, the next as soon as the last answered."""
    timings: dict[str, list[float]] = {page: [] for page in pages}
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(browsers) + 1)
    stop_at = [0.0]

    def run(browser: Browser, paths: dict[str, str], offset: int):
        mine: dict[str, list[float]] = {page: [] for page in pages}
        start.wait()
        index = offset
        while time.perf_counter() < stop_at[0]:
            page = pages[index % len(pages)]
            index += 1
            answer = browser.get(paths[page])
            if answer.status != 200:
                with lock:
                    errors.append(f"{paths[page]}: {answer.status}")
            mine[page].append(answer.ms)
        with lock:
            for page, values in mine.items():
                timings[page].extend(values)

    threads = [threading.Thread(target=run, args=(b, p, n), daemon=True) for n, (b, p) in enumerate(browsers)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    start.wait()
    for thread in threads:
        thread.join(seconds + 120)
    if errors:
        print(f"  {len(errors)} answers were not 200, e.g. {errors[:3]}")
    return timings


def crowd(port: int, browsers: list[tuple[Browser, dict[str, str]]], seconds: float) -> dict:
    """``browsers`` browsing at once for ``seconds`` (each page asked as soon as the last answered), driven by
    ``bench.crowd`` in a process of its own: {"timings": {page: [ms]}, "errors": [...], "client_cpu_seconds",
    "wall_seconds"}."""
    spec = {"port": port, "seconds": seconds,
            "users": [{"cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items()), "paths": paths}
                      for browser, paths in browsers]}
    done = subprocess.run([PYTHON, "-m", "bench.crowd"], cwd=ROOT, input=json.dumps(spec), capture_output=True,
                          text=True, timeout=seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{done.stderr}")
    result = json.loads(done.stdout)
    if result["errors"]:
        print(f"  {len(result['errors'])} answers were not 200, e.g. {result['errors'][:3]}")
    return result


def worker_cpu(master_pid: int) -> dict[int, float]:
    """CPU seconds used so far by each gunicorn worker (the master's children), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:  # ppid; utime and stime follow at 11 and 12
            used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return used


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


# ---------------------------------------------------------------- the actions


# A person reads the page before the next action. Actions within the same second also run into
# webhooks of the previous action applied after it (the pipeline's same-second tie), which is
# not what this measures.
BETWEEN_ACTIONS_SECONDS = 1.2


def action_cycle(browser: Browser, app_id: int) -> dict[str, float]:
    """One app from Free through every plan action; {action: ms as the user waits for it}."""
    took: dict[str, float] = {}
    billing = f"/apps/{app_id}/billing"

    def pause():
        time.sleep(BETWEEN_ACTIONS_SECONDS)

    page = browser.get(billing)
    took["billing page (baseline)"] = page.ms
    _, fields = form_for(page.body, "/billing/checkout")
    started = time.perf_counter()
    answer = browser.post(f"{billing}/checkout", {**fields, "plan": "pro"})
    if answer.status != 303:
        raise RuntimeError(f"checkout answered {answer.status}: {answer.body[:300]}")
    checkout_url = answer.location
    parts = urlsplit(checkout_url)
    hosted = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    hosted.request("GET", _local(checkout_url))
    hosted.getresponse().read()
    took["subscribe -> Checkout"] = (time.perf_counter() - started) * 1000
    form = urlencode({"email": "actions@bench.test", "cardNumber": "4242 4242 4242 4242", "cardExpiry": "12 / 34",
                      "cardCvc": "123", "billingName": "Bench Owner"})
    hosted.request("POST", _local(checkout_url), body=form,
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    paid = hosted.getresponse()
    paid.read()
    hosted.close()
    started = time.perf_counter()
    back = browser.get(_local(paid.getheader("Location") or ""))
    browser.get(_local(back.location))
    took["back from Checkout"] = (time.perf_counter() - started) * 1000

    pause()
    preview = browser.get(f"{billing}/upgrade?plan=enterprise")
    if preview.status != 200:  # refused: say why (the message is on the page it redirects to)
        preview = browser.get(_local(preview.location))
    took["upgrade preview"] = preview.ms
    _, fields = form_for(preview.body, "/billing/upgrade")
    took["confirm upgrade"] = browser.post_and_follow(f"{billing}/upgrade", fields).ms

    pause()
    page = browser.get(f"{billing}/downgrade?plan=pro")
    _, fields = form_for(page.body, "/billing/downgrade")
    landed = browser.post_and_follow(f"{billing}/downgrade", fields)
    took["schedule downgrade"] = landed.ms
    pause()
    _, fields = form_for(landed.body, "/billing/downgrade/undo")
    landed = browser.post_and_follow(f"{billing}/downgrade/undo", fields)
    took["undo downgrade"] = landed.ms

    pause()
    page = browser.get(f"{billing}/cancel")
    _, fields = form_for(page.body, "/billing/cancel")
    landed = browser.post_and_follow(f"{billing}/cancel", {**fields, "reason": "too_expensive"})
    took["cancel"] = landed.ms
    pause()
    _, fields = form_for(landed.body, "/billing/resume")
    took["resume"] = browser.post_and_follow(f"{billing}/resume", fields).ms
    return took


# ---------------------------------------------------------------- main


def describe_web(args) -> str:
    """The workers and threads gunicorn runs with: the flags given, else gunicorn.conf.py's (scripts/run's)."""
    namespace: dict = {}
    exec(compile((ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)
    workers = args.workers or namespace.get("workers", 1)
    threads = args.threads or namespace.get("threads", 1)
    kept = args.keepalive_requests if args.keepalive_requests is not None else namespace.get("KEEPALIVE_REQUESTS")
    return f"{workers} workers x {threads} threads, {kept or 'unlimited'} requests a kept-alive connection"


def default_stack(workdir: Path, redis: Service, sandbox: Service, base_url: str) -> dict[str, str]:
    """scripts/run's environment, on a fresh SQLite file in ``workdir``."""
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    return {
        "PORTAL_ENV": "development", "DATABASE_URL": f"sqlite:///{workdir / 'portal.sqlite3'}",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "REDIS_URL": redis.url, "SANDBOX_URL": sandbox.url,
        "PORTAL_BASE_URL": base_url, "STRIPE_KERNEL_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # 21 sign-ins from one address in a few seconds would meet the sign-in limit (20 a minute).
        "RATELIMIT_DISABLED": "1",
    }


def prepare_database(env: dict[str, str]) -> None:
    """The schema and the plans, as scripts/run prepares them."""
    for command in (["db", "upgrade"], ["sync-plans"]):
        subprocess.run([PYTHON, "-m", "flask", "--app", "wsgi", *command], cwd=ROOT, env={**os.environ, **env},
                       check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20, help="owners browsing at once")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the crowd browses")
    parser.add_argument("--actions", type=int, default=5, help="how many times each action is timed")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: gunicorn.conf.py's, as scripts/run)")
    parser.add_argument("--threads", type=int, help="threads per worker (default: gunicorn.conf.py's)")
    parser.add_argument("--keepalive-requests", type=int,
                        help="requests per kept-alive connection (WEB_KEEPALIVE_REQUESTS; default gunicorn.conf.py's)")
    parser.add_argument("--test-clock", action="store_true",
                        help="run the portal on a sandbox test clock (STRIPE_TEST_CLOCK), as the test suite does")
    parser.add_argument("--no-crowd", action="store_true", help="time the actions only")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (logs, database)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    logs = workdir / "logs"
    logs.mkdir()
    services: list[Service] = []
    print("load before:", uptime(), flush=True)
    try:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        redis = start_redis(workdir / "redis", log_path=logs / "redis.log")
        services.append(redis)
        sandbox = start_sandbox(workdir / "sandbox", webhook_url=f"{base_url}/webhooks/kernel/stripe",
                                webhook_secret=WEBHOOK_SECRET, log_path=logs / "sandbox.log")
        services.append(sandbox)
        env = default_stack(workdir, redis, sandbox, base_url)
        if args.test_clock:
            from sandbox.testing import SandboxControl

            env["STRIPE_TEST_CLOCK"] = SandboxControl(sandbox.url).create_clock(name="bench-pages")
        prepare_database(env)
        seeded = seed(env, sandbox.url, args.users, args.actions)
        services.append(start_worker({**os.environ, **env}, logs / "worker.log"))
        if args.keepalive_requests is not None:
            env["WEB_KEEPALIVE_REQUESTS"] = str(args.keepalive_requests)
        web = start_web({**os.environ, **env}, port, logs / "web.log", workers=args.workers, threads=args.threads)
        services.append(web)
        print(f"stack up in {workdir} (gunicorn {describe_web(args)}, SQLite);"
              f" {len(seeded['owners'])} owners seeded", flush=True)

        crowd_of = []
        for owner in seeded["owners"]:
            browser = Browser(port)
            browser.sign_in(owner["email"])
            browser.close()  # the load generator opens its own connections, with these cookies
            crowd_of.append((browser, owner_paths(owner)))

        # Warm-up: templates compiled, connections opened, in every worker.
        crowd(port, crowd_of, 3.0)
        health = Browser(port)
        bare = [health.get("/healthz").ms for _ in range(300)]
        alone_seconds = 2.0 if args.no_crowd else min(args.seconds, 8.0)
        alone = crowd(port, crowd_of[:1], alone_seconds)["timings"]
        before = worker_cpu(web.process.pid)
        busy_run = crowd(port, crowd_of[:1], 1.0) if args.no_crowd else crowd(port, crowd_of, args.seconds)
        after = worker_cpu(web.process.pid)
        busy = busy_run["timings"]
        # The floor: the same crowd on /healthz (no session, no database, no template) on the same server.
        floor_seconds = min(args.seconds, 8.0)
        floor_run = crowd(port, [(Browser(port), {"healthz": "/healthz"}) for _ in range(len(crowd_of))], floor_seconds)
        floor = floor_run["timings"]["healthz"]

        actor = Browser(port)
        actor.sign_in(seeded["actions"]["email"])
        actions: dict[str, list[float]] = {}
        for app_id in seeded["actions"]["apps"]:
            for name, ms in action_cycle(actor, app_id).items():
                actions.setdefault(name, []).append(ms)
    finally:
        for service in reversed(services):
            service.stop()
    print("load after:", uptime())

    print(f"\nPages, SQLite, gunicorn {describe_web(args)}, {os.cpu_count()} CPUs shared with the load"
          f" generator (and other work on this machine)\n")
    print(f"  /healthz, one user: p50 {pct(bare, .5):.1f} ms, p95 {pct(bare, .95):.1f} ms, max {max(bare):.1f} ms")
    print(f"\n{'page':<10} | {'1 user p50':>10} | {'p95':>6} | {f'{args.users} users p50':>13} | {'p95':>6} |"
          f" {'max':>6} | {'p95 ratio':>9}")
    everyone: list[float] = []
    for page in CROWD_PAGES:
        one, many = alone[page], busy[page]
        everyone += many
        print(f"{page:<10} | {pct(one, .5):10.1f} | {pct(one, .95):6.1f} | {pct(many, .5):13.1f} |"
              f" {pct(many, .95):6.1f} | {max(many):6.0f} | {pct(many, .95) / pct(one, .95):8.1f}x")
    one_all = [v for values in alone.values() for v in values]
    print(f"{'all':<10} | {pct(one_all, .5):10.1f} | {pct(one_all, .95):6.1f} | {pct(everyone, .5):13.1f} |"
          f" {pct(everyone, .95):6.1f} | {max(everyone):6.0f} | {pct(everyone, .95) / pct(one_all, .95):8.1f}x")
    crowd_seconds = busy_run["wall_seconds"]
    print(f"\n1 user: {len(one_all) / alone_seconds:.0f} pages/s;"
          f" {args.users} users: {len(everyone) / crowd_seconds:.0f} pages/s")
    print(f"Floor, {args.users} users on /healthz: p50 {pct(floor, .5):.1f} ms, p95 {pct(floor, .95):.1f} ms,"
          f" max {max(floor):.0f} ms, {len(floor) / floor_run['wall_seconds']:.0f} answers/s")
    print(f"Load generator (one asyncio process): {busy_run['client_cpu_seconds'] / crowd_seconds:.0%} of a core"
          f" during the crowd, {floor_run['client_cpu_seconds'] / floor_run['wall_seconds']:.0%} during the floor")
    spent = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    print("gunicorn workers' CPU during the crowd: "
          + ", ".join(f"{seconds / crowd_seconds:.0%}" for seconds in sorted(spent.values(), reverse=True))
          + f" of a core ({sum(spent.values()) * 1000 / max(1, len(everyone)):.1f} ms of CPU a page)")

    print(f"\nActions, one owner alone on the server, {args.actions} times each (POST + redirect + the page it"
          " lands on, ms):\n")
    print(f"{'action':<24} | {'median':>7} | {'max':>7} | runs")
    for name, values in actions.items():
        print(f"{name:<24} | {statistics.median(values):7.0f} | {max(values):7.0f} |"
              f" {' '.join(f'{v:.0f}' for v in values)}")
    if args.keep:
        print(f"\nkept {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

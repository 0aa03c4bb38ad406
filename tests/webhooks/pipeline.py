"""Webhooks flowing for real in a test: the sandbox delivers signed events to the running portal, and an RQ
worker process handles them.

Use the ``webhook_pipeline`` fixture (tests/conftest.py) in any end-to-end test:

    def test_something(webhook_pipeline, tenant):
        app = webhook_pipeline.app               # the billing_app, now queueing jobs to Redis
        ...act on the sandbox (hosted checkout, advance the clock, pay an invoice)...
        webhook_pipeline.wait()                   # every delivery made and every job finished
        ...assert on the database...

What it sets up, per test: the test's app served over HTTP from threads, a webhook
endpoint for it registered with the (reset) sandbox for every event type, the
secret the sandbox returned configured on the app, ``RQ_ASYNC`` turned on, and
``python -m jobs.worker`` started as a subprocess on the test's database, Redis
and sandbox (it applies events and runs its RQ worker child as production does;
their log: ``webhook_pipeline.worker_log``). ``wait()`` returns when the sandbox has
no delivery pending, no recorded event is waiting and the queue is idle; it raises ``TimeoutError`` with the worker's log tail otherwise. Jobs other
engineers enqueue through ``portal.queue.enqueue`` go to the same worker.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import requests
from redis import Redis
from rq import Queue
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from billing.models import ProcessedWebhook, WebhookStatus
from jobs.queues import QUEUES
from portal.extensions import db
from scripts.services import PYTHON, ROOT
from tests.webhooks.serving import ThreadedServer

ENDPOINT_PATH = "/webhooks/kernel/stripe"


class WebhookPipeline:
    def __init__(self, app, sandbox, workdir: Path):
        self.app = app
        self.sandbox = sandbox
        self.workdir = workdir
        self.worker_log = workdir / "worker.log"
        self.server: ThreadedServer | None = None
        self.worker: subprocess.Popen | None = None
        self.endpoint_id: str | None = None
        self.secret: str | None = None
        self._redis = Redis.from_url(app.config["REDIS_URL"])
        self._queues = [Queue(name, connection=self._redis) for name in QUEUES]

    @property
    def url(self) -> str:
        """The portal's base URL (the server the sandbox delivers to)."""
        assert self.server is not None
        return self.server.url

    def _sandbox_api(self, method: str, path: str, **data) -> dict:
        response = requests.request(method, f"{self.sandbox.url}/v1{path}", data=data or None, timeout=10,
                                    headers={"Authorization": "Bearer sk_test_sandbox"})
        response.raise_for_status()
        return response.json()

    def _empty(self) -> None:
        # Jobs and handed-off ids left by an earlier test belong to another database.
        for queue in self._queues:
            queue.empty()

    def start(self) -> "WebhookPipeline":
        self._empty()
        self.app.config["RQ_ASYNC"] = True
        self.server = ThreadedServer(self.app).__enter__()
        endpoint = self._sandbox_api("POST", "/webhook_endpoints", url=self.url + ENDPOINT_PATH,
                                     **{"enabled_events[]": "*"})
        self.endpoint_id, self.secret = endpoint["id"], endpoint["secret"]
        self.app.config["STRIPE_KERNEL_WEBHOOK_SECRETS"] = [self.secret]
        env = {
            "PORTAL_ENV": "test",
            "SECRET_KEY": self.app.config["SECRET_KEY"],
            "DATABASE_URL": self.app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": self.app.config["REDIS_URL"],
            "SANDBOX_URL": self.app.config["SANDBOX_URL"],
            "STRIPE_KERNEL_WEBHOOK_SECRET": self.secret,
            "SMTP_URL": self.app.config.get("SMTP_URL", ""),
            "PYTHONUNBUFFERED": "1",
        }
        # Not scripts.services.start_worker: it leaves its log file open in this process.
        with open(self.worker_log, "ab") as log:
            self.worker = subprocess.Popen([PYTHON, "-m", "jobs.worker"], cwd=ROOT, env={**os.environ, **env},
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def pending(self) -> dict[str, int]:
        """What is still in flight: sandbox deliveries, recorded-but-unapplied events, queued or running jobs."""
        with self.app.app_context():
            waiting = db.session.scalar(select(func.count(ProcessedWebhook.id))
                                        .where(ProcessedWebhook.status == WebhookStatus.RECEIVED))
            db.session.remove()
        return {
            "deliveries": self.sandbox.pending_deliveries(),
            "events": waiting or 0,
            "jobs": sum(queue.count + StartedJobRegistry(queue=queue).count for queue in self._queues),
        }

    def wait(self, timeout: float = 30.0) -> None:
        """Block until every delivery was made and every event handled (processed, ignored or failed)."""
        deadline = time.monotonic() + timeout
        settled_since = None
        while True:
            pending = self.pending()
            if not any(pending.values()):
                # Twice in a row, a moment apart: a delivery answered just now may have queued a job.
                if settled_since is not None and time.monotonic() - settled_since > 0.1:
                    return
                settled_since = settled_since or time.monotonic()
            else:
                settled_since = None
            if self.worker is not None and self.worker.poll() is not None:
                raise RuntimeError(f"the RQ worker exited; its log:\n{self._log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"webhooks still in flight after {timeout}s: {pending}\n{self._log_tail()}")
            time.sleep(0.05)

    def _log_tail(self) -> str:
        try:
            return self.worker_log.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no worker log)"

    def stop(self) -> None:
        if self.endpoint_id:
            try:
                self._sandbox_api("DELETE", f"/webhook_endpoints/{self.endpoint_id}")
            except requests.RequestException:
                pass
        if self.worker is not None and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGTERM)  # RQ's warm shutdown: the running job finishes first
            try:
                self.worker.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.worker.pid, signal.SIGKILL)
                self.worker.wait()
        if self.server is not None:
            self.server.__exit__(None, None, None)
        self.app.config["RQ_ASYNC"] = False
        self._empty()

"""/metrics: who may read it, the database's figures on planted data, and counters that add up across processes
(several gunicorn workers, several RQ workers forking a horse per job)."""
from __future__ import annotations

import os
import signal
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import Queue

from billing import metrics
from billing.alert_rules import evaluate
from billing.models import (
    Alert,
    AttemptStatus,
    GatewayIdempotencyConflict,
    KernelInvoice,
    KernelPlan,
    KernelPaymentAttempt,
    ProcessedWebhook,
    WebhookStatus,
)
from billing.states import SubscriptionStatus as S
from portal.extensions import db
from scripts.services import PYTHON, ROOT, free_port, start_web, wait_until
from sqlalchemy import select
from tests.helpers.clients import english_client
from tests.ops import planting
from tests.ops.planting import DAY


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


# ---------------------------------------------------------------- access

def test_metrics_are_open_to_this_machine(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "kernel_billing_mrr" in response.get_data(as_text=True)


def test_metrics_from_elsewhere_need_the_bearer_token(app, client):
    elsewhere = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", environ_base=elsewhere).status_code == 403  # no token configured: nobody
    # A proxy on this machine makes every request look local: a forwarded one is not.
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    app.config["METRICS_TOKEN"] = "metrics-token-for-tests"
    assert client.get("/metrics", environ_base=elsewhere).status_code == 401
    assert client.get("/metrics", environ_base=elsewhere,
                      headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = client.get("/metrics", environ_base=elsewhere,
                          headers={"Authorization": "Bearer metrics-token-for-tests"})
    assert response.status_code == 200


# ---------------------------------------------------------------- figures from the database

def test_database_figures_on_planted_data(app, client):
    now = datetime.now(timezone.utc)
    with app.app_context():
        for _ in range(3):
            planting.subscription(db.session, S.ACTIVE, plan_code="pro", created_at=now - 60 * DAY)
        enterprise = planting.subscription(db.session, S.PAST_DUE, plan_code="enterprise",
                                           created_at=now - 60 * DAY)
        planting.subscription(db.session, S.CANCELED, created_at=now - 60 * DAY, canceled_at=now - 2 * DAY)
        planting.outcome(db.session, enterprise.app_id, "succeeded", now - timedelta(hours=2),
                        plan_code="enterprise")
        planting.outcome(db.session, enterprise.app_id, "failed", now - timedelta(hours=1),
                        reason="card_declined", plan_code="enterprise")
        planting.outcome(db.session, enterprise.app_id, "failed", now - timedelta(hours=1),
                        reason="card_declined", plan_code="enterprise")
        for n, (status, age) in enumerate([(WebhookStatus.RECEIVED, 40), (WebhookStatus.RECEIVED, 5),
                                           (WebhookStatus.FAILED, 100), (WebhookStatus.PROCESSED, 500)]):
            db.session.add(ProcessedWebhook(event_id=f"evt_m{n}", type="invoice.paid", created=0, livemode=False,
                                            payload="{}", status=status, received_at=now - timedelta(seconds=age)))
        invoice = KernelInvoice(app_id=enterprise.app_id, subscription_id=enterprise.id, stripe_invoice_id="in_m1",
                                status="open", amount_due=49900, amount_paid=0, currency="BRL")
        db.session.add(invoice)
        db.session.flush()
        for number, status in [(0, AttemptStatus.FAILED), (1, AttemptStatus.SCHEDULED),
                               (2, AttemptStatus.SCHEDULED)]:
            db.session.add(KernelPaymentAttempt(app_id=enterprise.app_id, invoice_id=invoice.id,
                                                attempt_number=number, status=status))
        db.session.commit()

    scraped = samples(client.get("/metrics").get_data(as_text=True))
    brl = (("currency", "BRL"),)
    assert scraped[("kernel_billing_mrr", brl)] == 3 * 9900 + 49900
    assert scraped[("kernel_billing_active_subscriptions", brl)] == 4
    assert scraped[("kernel_billing_churn_rate", brl)] == pytest.approx(1 / 5)
    assert scraped[("kernel_billing_payment_success_total", (("plan", "enterprise"),))] == 1
    assert scraped[("kernel_billing_payment_failed_total", (("plan", "enterprise"), ("reason", "card_declined")))] == 2
    assert scraped[("kernel_billing_webhook_backlog", ())] == 2
    assert 40 <= scraped[("kernel_billing_webhook_oldest_waiting_seconds", ())] < 100
    assert scraped[("kernel_billing_webhook_retry_queue", ())] == 1
    assert scraped[("kernel_billing_dunning_invoices", ())] == 1
    assert scraped[("kernel_billing_dunning_retries_scheduled", ())] == 2


def test_a_webhook_applied_in_process_counts_with_its_latency(app, client):
    before = samples(client.get("/metrics").get_data(as_text=True))
    received = datetime.now(timezone.utc) - timedelta(seconds=3)
    metrics.webhook_applied("invoice.paid", "processed", received)
    after = samples(client.get("/metrics").get_data(as_text=True))
    key = ("kernel_billing_webhook_events_applied_total", (("outcome", "processed"), ("type", "invoice.paid")))
    assert after[key] - before.get(key, 0) == 1
    bucket = ("kernel_billing_webhook_apply_latency_seconds_bucket", (("le", "5.0"),))
    below = ("kernel_billing_webhook_apply_latency_seconds_bucket", (("le", "2.5"),))
    assert after[bucket] - before.get(bucket, 0) == 1 and after[below] == before.get(below, 0)


# ---------------------------------------------------------------- several processes

@pytest.fixture
def metrics_dir(tmp_path, monkeypatch):
    path = tmp_path / "prometheus"
    path.mkdir()
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(path))  # this process scrapes the files; it counts on its own
    return path


def _pids_with_files(path: Path) -> set[str]:
    return {name.stem.split("_", 1)[1] for name in path.glob("*.db")}


def test_counters_add_up_across_gunicorn_workers_and_survive_a_graceful_reload(app, app_config, metrics_dir,
                                                                               tmp_path):
    port = free_port()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"],
           "REDIS_URL": app_config["REDIS_URL"], "RATELIMIT_DISABLED": "1"}
    web = start_web(env, port, tmp_path / "web.log", workers=3, threads=1, probe="/healthz")
    try:
        def refused_total() -> float:
            # A new connection each time, so different workers answer the scrape. Right after the reload it waits
            # for the new workers to load the app: 8-12 s measured on a loaded two-core test machine.
            text = requests.get(f"{web.url}/metrics", headers={"Connection": "close"}, timeout=60).text
            return sum(value for (name, labels), value in samples(text).items()
                       if name == "kernel_billing_webhook_events_received_total")

        for _ in range(30):  # unsigned: refused, and counted by whichever worker took it
            requests.post(f"{web.url}/webhooks/kernel/stripe", data=b"{}", headers={"Connection": "close"},
                          timeout=10)
        assert [refused_total() for _ in range(5)] == [30] * 5

        master = str(web.process.pid)  # its (empty) histogram file stays: the master lives on
        old_workers = _pids_with_files(metrics_dir) - {"archive", master}
        os.kill(web.process.pid, signal.SIGHUP)  # graceful reload: every worker replaced
        wait_until(lambda: not old_workers & _pids_with_files(metrics_dir),
                   "the old workers' files folded into the archive", timeout=30)
        assert "archive" in _pids_with_files(metrics_dir)
        # What the old workers counted is read by new ones, and what the new ones count adds to it.
        assert refused_total() == 30
        for _ in range(10):
            requests.post(f"{web.url}/webhooks/kernel/stripe", data=b"{}", headers={"Connection": "close"},
                          timeout=10)
        assert [refused_total() for _ in range(3)] == [40] * 3
    finally:
        web.stop()


def test_counters_add_up_across_rq_workers_forking_a_horse_per_job(metrics_dir, redis_url, tmp_path):
    url = redis_url.rsplit("/", 1)[0] + "/7"  # a database of its own: the workers register schedules there
    connection = Redis.from_url(url)
    connection.flushdb()
    queue = Queue("metrics-test", connection=connection)
    jobs = 40
    for _ in range(jobs):
        queue.enqueue("tests.ops.metric_jobs.count_one_applied")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "REDIS_URL": url,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'worker.sqlite3'}"}
    command = [PYTHON, "-m", "rq.cli", "worker", "--burst", "--url", url, "--worker-class",
               "jobs.worker.PortalWorker", "metrics-test"]
    workers = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(2)]
    try:
        for worker in workers:
            assert worker.wait(120) == 0
    finally:
        connection.flushdb()
    metrics.compact(str(metrics_dir))
    assert _pids_with_files(metrics_dir) == {"archive"}, "every horse's file folded into one"
    scrape = CollectorRegistry()
    MultiProcessCollector(scrape, str(metrics_dir))  # what metrics.registry() reads, without the database
    counted = samples(generate_latest(scrape).decode())
    assert counted[("kernel_billing_webhook_events_applied_total",
                    (("outcome", "processed"), ("type", "test.event")))] == jobs


_COUNT_ONE = ("import sys; from prometheus_client import Counter; "
              "Counter('kernel_billing_test_total', 'one per process').inc(); sys.stdout.write('ok\\n'); "
              "sys.stdout.flush(); sys.stdin.read()")


def test_a_worker_that_exits_while_another_is_being_folded_is_folded_too(metrics_dir, monkeypatch):
    """A reload stops every worker at once: the second SIGCHLD can arrive while the master is folding the first
    worker's files, before the second worker was reaped (so that turn took it for alive)."""
    from billing import metrics_files

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    first, second = [subprocess.Popen([PYTHON, "-c", _COUNT_ONE], env=env, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True) for _ in range(2)]
    for process in (first, second):
        assert process.stdout.readline() == "ok\n"
    first.communicate("")  # exits and is reaped
    real_compact = metrics_files.compact

    def compact_then_the_second_exits(path=None, **kwargs):
        folded = real_compact(path, **kwargs)
        if second.poll() is None:  # as gunicorn's SIGCHLD handler would, inside the folding under way
            second.communicate("")
            metrics_files.process_exited(second.pid)
        return folded

    monkeypatch.setattr(metrics_files, "compact", compact_then_the_second_exits)
    metrics_files.process_exited(first.pid)
    assert _pids_with_files(metrics_dir) == {"archive"}, "both workers' files folded"
    scrape = CollectorRegistry()
    MultiProcessCollector(scrape, str(metrics_dir))
    assert samples(generate_latest(scrape).decode())[("kernel_billing_test_total", ())] == 2


def test_an_idempotency_key_conflict_is_counted(billing_app):
    from billing.errors import IdempotencyConflict
    from portal.payments import gateway

    before = metrics.IDEMPOTENCY_CONFLICTS._value.get()
    with billing_app.app_context():
        instance = gateway()
        customer = instance.create_customer(app_id=1, email="x@acme.test", name="X")
        kwargs = dict(customer_id=customer.id, app_id=1, plan_code="pro", attempt="conflict-test-1",
                      price_id=db.session.scalar(select(KernelPlan.stripe_price_id).where(KernelPlan.code == "pro")),
                      cancel_url="http://portal.test/c")
        db.session.rollback()  # as in the portal: no transaction stays open across a call to Stripe
        instance.create_subscription_checkout(success_url="http://portal.test/s", **kwargs)
        with pytest.raises(IdempotencyConflict):
            instance.create_subscription_checkout(success_url="http://portal.test/other", **kwargs)
    scraped = samples(english_client(billing_app).get("/metrics").get_data(as_text=True))
    assert scraped[("kernel_billing_gateway_idempotency_conflicts_total", ())] == before + 1
    # Also written down, outside any transaction of the caller's, for the portal's own alert rule.
    with billing_app.app_context():
        [refused] = db.session.scalars(select(GatewayIdempotencyConflict)).all()
        assert refused.request_id and refused.request_id.startswith("req_")
        evaluate(db.session, datetime.now(timezone.utc))
        db.session.commit()
        [alert] = db.session.scalars(select(Alert).where(Alert.kind == "BillingGatewayIdempotency")).all()
        assert refused.request_id in alert.message

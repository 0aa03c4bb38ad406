"""JSON-lines logs: the fields, the redaction of the whole line, correlation ids from requests into jobs, 502s."""
from __future__ import annotations

import json
import logging

from redis import Redis
from rq import Queue

from billing.webhooks.correlation import correlated
from portal import create_app
from portal.config import load_config
from portal.logs import RedactedJsonFormatter, RedactedTextFormatter
from portal.queue import enqueue
from tests.helpers.clients import english_client

CARD = "4242 4242 4242 4242"
SECRET = "sk_test_" + "a1B2c3D4e5F6g7H8"
WEBHOOK_SECRET = "whsec_" + "Zz9Yy8Xx7"
API_TOKEN = "kbp_" + "Q1w2E3r4T5y6U7i8"


def _record(message: str, *args, exc_info=None, **extra) -> logging.LogRecord:
    record = logging.getLogger("billing.test").makeRecord("billing.test", logging.ERROR, __file__, 1, message, args,
                                                          exc_info, extra=extra)
    return record


def test_a_json_line_has_its_fields_and_no_secret_anywhere_in_it():
    try:
        raise RuntimeError(f"Stripe said no to {SECRET} with {WEBHOOK_SECRET}")
    except RuntimeError:
        import sys

        exc_info = sys.exc_info()
    record = _record("card %s cvc=123 failed", CARD, exc_info=exc_info, event="payment.attempt",
                     payload={"card": {"number": CARD, "cvc": "123"}, "key": SECRET, "token": API_TOKEN})
    record.correlation_id = "evt_123"
    line = RedactedJsonFormatter().format(record)
    parsed = json.loads(line)
    assert "\n" not in line
    assert (parsed["level"], parsed["logger"], parsed["event"], parsed["correlation_id"]) == (
        "ERROR", "billing.test", "payment.attempt", "evt_123")
    assert "RuntimeError" in parsed["exc_info"]
    for secret in (CARD, "4242424242424242", SECRET, WEBHOOK_SECRET, API_TOKEN, '"cvc": "123"', "cvc=123"):
        assert secret not in line, secret


def test_the_human_format_is_redacted_too():
    line = RedactedTextFormatter("%(levelname)s %(message)s").format(_record("key %s", SECRET))
    assert line == "ERROR key [secret key redacted]"


def test_production_logs_json_and_development_text():
    production = {"PORTAL_ENV": "production", "SECRET_KEY": "x" * 32, "DATABASE_URL": "sqlite://",
                  "REDIS_URL": "redis://127.0.0.1:1/0", "STRIPE_KERNEL_WEBHOOK_SECRET": "whsec_test",
                  "PORTAL_BASE_URL": "https://billing.example.com"}
    assert load_config(production)["LOG_FORMAT"] == "json"
    assert load_config({})["LOG_FORMAT"] == "text"
    assert load_config({"LOG_FORMAT": "json"})["LOG_FORMAT"] == "json"


def test_a_502_answered_writes_a_line_with_the_request_id(app_config, caplog):
    app = create_app(app_config)
    app.add_url_rule("/test-bad-gateway", "bad_gateway", lambda: ("upstream failed", 502))
    with caplog.at_level(logging.INFO):
        response = english_client(app).get("/test-bad-gateway", headers={"X-Request-Id": "req_from_proxy_1"})
    assert response.status_code == 502
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "http.502"]
    assert (line.correlation_id, line.path, line.http_status) == ("req_from_proxy_1", "/test-bad-gateway", 502)


def test_a_job_logs_with_the_correlation_id_of_the_request_that_enqueued_it(app, redis_url, caplog):
    app.config["RQ_ASYNC"] = True
    with app.app_context(), correlated("req_enqueuer_42"):
        job = enqueue("tests.ops.log_jobs.say_something", queue="default")
    assert job.meta["correlation_id"] == "req_enqueuer_42"
    Queue("default", connection=Redis.from_url(redis_url)).remove(job)
    with caplog.at_level(logging.INFO):
        job.perform()  # as a worker runs it, outside any request
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "test.job"]
    assert line.correlation_id == "req_enqueuer_42"

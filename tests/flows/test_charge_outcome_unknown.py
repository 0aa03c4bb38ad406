"""A charging call whose answer is lost: the connection to Stripe is cut after the request was sent.

A small HTTP proxy stands between the portal and the sandbox. For the chosen
requests it forwards the request, lets the sandbox carry it out (the card is
charged), reads the answer and then closes the connection without passing it on:
exactly what a crash or a network cut after sending looks like to the portal.
"""
from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from sqlalchemy import select

from billing import charges
from billing.audit import Origin
from billing.gateway import StripeGateway, upgrade_key
from billing.models import AuditLog, ChargeAttempt, ChargeStatus
from portal.payments import EXTENSION
from tests.helpers.data import short_session, subscription_of
from tests.helpers.clients import subscribe
from tests.flows.test_plan_changes import preview_form, stripe_updates

CONFIRMING = "We are confirming the result of your payment with Stripe"
NOTHING_CHARGED = "nothing was charged"


class CuttingProxy:
    """Forwards to ``target``; requests matching ``cut`` (method, path regex) are carried out, then cut."""

    def __init__(self, target: str):
        self.target = target.rstrip("/")
        self.cut: tuple[str, re.Pattern] | None = None
        self.cut_count = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = requests.request(self.command, proxy.target + self.path, data=body, headers=headers,
                                          timeout=30)
                rule = proxy.cut
                if rule and self.command == rule[0] and rule[1].search(self.path):
                    proxy.cut_count += 1
                    self.close_connection = True  # the sandbox did the work; its answer is lost
                    return
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxied(billing_app, sandbox):
    """The portal's gateway talks to the sandbox through a ``CuttingProxy``."""
    proxy = CuttingProxy(sandbox.url)
    original = billing_app.extensions[EXTENSION]
    billing_app.extensions[EXTENSION] = StripeGateway.for_sandbox(proxy.url, test_clock=original.test_clock)
    yield proxy
    billing_app.extensions[EXTENSION] = original
    proxy.close()


def _attempts(app):
    with short_session(app) as session:
        return session.scalars(select(ChargeAttempt).order_by(ChargeAttempt.id)).all()


def _charge_audit(app):
    with short_session(app) as session:
        return [(entry.action, entry.actor_user_id) for entry in session.scalars(
            select(AuditLog).where(AuditLog.object_type == "charge_attempt").order_by(AuditLog.id))]


def test_an_upgrade_whose_answer_is_lost_is_being_confirmed_then_settled_by_the_same_key(
        billing_app, owner_http, owner, tenant, proxied):
    subscribe(owner_http, tenant.id, "pro")
    _, form = preview_form(owner_http, tenant.id)
    row = subscription_of(billing_app, tenant.id)
    proxied.cut = ("POST", re.compile(r"^/v1/subscriptions/sub_"))

    page = owner_http.post(f"/apps/{tenant.id}/billing/upgrade", data=form, follow_redirects=True)
    text = page.get_data(as_text=True)
    assert CONFIRMING in text and NOTHING_CHARGED not in text
    assert proxied.cut_count >= 1
    (attempt,) = _attempts(billing_app)
    with billing_app.app_context():
        pro_price, ent_price = row.plan.stripe_price_id, None
        from billing.plans import plan_by_code
        from portal.extensions import db
        ent_price = plan_by_code(db.session, "enterprise").stripe_price_id
    assert attempt.idempotency_key == upgrade_key(row.stripe_subscription_id, pro_price, ent_price, form["attempt"])
    assert attempt.status == ChargeStatus.UNKNOWN and attempt.requested_by_id == owner.id
    assert _charge_audit(billing_app) == [("charge.requested", owner.id), ("charge.outcome_unknown", owner.id)]
    (charged,) = stripe_updates(billing_app, tenant.id)  # Stripe did charge, once
    assert charged.amount_paid > 0

    # While it is in doubt, another upgrade form does not charge again.
    other_form = {**form, "attempt": "another-tab-attempt-1"}
    again = owner_http.post(f"/apps/{tenant.id}/billing/upgrade", data=other_form, follow_redirects=True)
    assert CONFIRMING in again.get_data(as_text=True)
    assert len(stripe_updates(billing_app, tenant.id)) == 1

    # The connection is back: the same form again replays the same key, and Stripe answers what it did.
    proxied.cut = None
    done = owner_http.post(f"/apps/{tenant.id}/billing/upgrade", data=form, follow_redirects=True)
    assert "Your app is now on Enterprise." in done.get_data(as_text=True)
    (attempt,) = _attempts(billing_app)
    assert attempt.status == ChargeStatus.SUCCEEDED and attempt.amount == charged.amount_paid
    assert attempt.stripe_invoice_id == charged.id
    assert _charge_audit(billing_app)[-1] == ("charge.succeeded", owner.id)
    assert subscription_of(billing_app, tenant.id).plan.code == "enterprise"
    assert len(stripe_updates(billing_app, tenant.id)) == 1  # the retry charged nothing more


def test_the_invoice_paid_webhook_settles_a_charge_in_doubt(billing_app, owner_http, owner, tenant, proxied):
    subscribe(owner_http, tenant.id, "pro")
    _, form = preview_form(owner_http, tenant.id)
    proxied.cut = ("POST", re.compile(r"^/v1/subscriptions/sub_"))
    owner_http.post(f"/apps/{tenant.id}/billing/upgrade", data=form)
    proxied.cut = None
    (charged,) = stripe_updates(billing_app, tenant.id)
    with short_session(billing_app) as session:
        charges.settle_from_invoice(session, charged, Origin(actor="webhook", correlation_id="evt_paid"))
        charges.settle_from_invoice(session, charged, Origin(actor="webhook", correlation_id="evt_paid_again"))
    (attempt,) = _attempts(billing_app)
    assert attempt.status == ChargeStatus.SUCCEEDED and attempt.amount == charged.amount_paid
    # Settled once, by the webhook, in the name of the owner who asked.
    assert _charge_audit(billing_app)[-1] == ("charge.succeeded", owner.id)
    assert [a for a, _ in _charge_audit(billing_app)].count("charge.succeeded") == 1


def test_a_refused_upgrade_is_recorded_as_not_charged(billing_app, owner_http, tenant, sandbox):
    subscribe(owner_http, tenant.id, "pro")
    _, form = preview_form(owner_http, tenant.id)
    sandbox.fail(count=20, status=503)  # Stripe down before anything is charged: that is still known
    page = owner_http.post(f"/apps/{tenant.id}/billing/upgrade", data=form, follow_redirects=True)
    assert "nothing was charged" in page.get_data(as_text=True)
    (attempt,) = _attempts(billing_app)
    assert attempt.status == ChargeStatus.FAILED

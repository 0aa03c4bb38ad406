"""Operations for superadmins: the page and the commands pause and resume billing, send incident notices through the
outbox, and keep the release ledger (with the gateway mode recorded at start-up)."""
from __future__ import annotations

from sqlalchemy import func, select

from billing import releases
from billing.models import AuditLog, BillingPause, OutboxMessage, Release, ReleaseKind
from portal import create_app
from portal.control import record_gateway_mode_at_start
from portal.extensions import db
from tests.helpers.data import make_app, make_user


def _ledger(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [(r.kind.value, r.actor) for r in db.session.scalars(select(Release).order_by(Release.id))]


def test_a_superadmin_pauses_resumes_one_app_then_all_from_the_operations_page(app, superadmin_client, tenant):
    page = superadmin_client.get("/admin/operations")
    assert page.status_code == 200 and "Billing runs" in page.get_data(True)
    refused = superadmin_client.post("/admin/operations/pause", data={"reason": " "}, follow_redirects=True)
    assert "Say why billing is paused" in refused.get_data(True)

    paused = superadmin_client.post("/admin/operations/pause", data={"reason": "Stripe incident"},
                                    follow_redirects=True).get_data(True)
    assert "Billing paused" in paused and "Stripe incident" in paused and "billing-paused-banner" in paused
    first = superadmin_client.post("/admin/operations/resume", data={"app_id": str(tenant.id)},
                                   follow_redirects=True).get_data(True)
    assert "Billing resumed for 1 app(s) first" in first and 'id="resumed-apps"' in first
    done = superadmin_client.post("/admin/operations/resume", data={"scope": "all"},
                                  follow_redirects=True).get_data(True)
    assert "Billing resumed for every app" in done and "Billing runs" in done
    assert _ledger(app) == [("billing_paused", "admin@kernel.test"), ("billing_resumed", "admin@kernel.test"),
                            ("billing_resumed", "admin@kernel.test")]
    ledger_page = superadmin_client.get("/admin/releases?kind=billing_paused").get_data(True)
    assert ledger_page.count('data-kind="billing_paused"') == 1 and 'data-kind="billing_resumed"' not in ledger_page


def test_an_owner_cannot_reach_the_operations(app, owner_client):
    assert owner_client.get("/admin/operations").status_code == 404
    assert owner_client.post("/admin/operations/pause", data={"reason": "x"}).status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count(BillingPause.id))) == 0


def test_an_incident_notice_reaches_the_owners_of_the_chosen_apps_once(app, superadmin_client, tenant, other_tenant):
    third = make_app(app, "Third", make_user(app, "owner@third.test"), slug="third")
    form = {"app_id": [str(tenant.id), str(third.id)], "subject": "Payments delayed",
            "body": "We are looking into it.", "attempt": "notice-attempt-1"}
    sent = superadmin_client.post("/admin/operations/notice", data=form, follow_redirects=True).get_data(True)
    assert "Incident notice sent: 2 message(s)" in sent
    superadmin_client.post("/admin/operations/notice", data=form)  # a double submit sends nothing more
    with app.app_context():
        messages = db.session.execute(select(OutboxMessage.app_id, OutboxMessage.to_email, OutboxMessage.kind)
                                      .order_by(OutboxMessage.app_id)).all()
        assert messages == [(tenant.id, "owner@acme.test", "incident"), (third.id, "owner@third.test", "incident")]
        assert db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "incident.notice_sent")) == 1
    assert _ledger(app) == [("incident_notice", "admin@kernel.test")]
    empty = superadmin_client.post("/admin/operations/notice", data={"subject": "x", "body": "y",
                                                                     "attempt": "notice-attempt-2"},
                                   follow_redirects=True).get_data(True)
    assert "Choose at least one app" in empty


def test_the_commands_pause_resume_notify_and_record_a_release(app, runner, tenant):
    assert "Billing runs." in runner.invoke(args=["billing", "status"]).output
    assert runner.invoke(args=["billing", "pause"]).exit_code != 0  # --reason is required
    assert "Billing paused" in runner.invoke(args=["billing", "pause", "--reason", "bad deploy", "--by", "ana"]).output
    status = runner.invoke(args=["billing", "status"]).output
    assert "PAUSED" in status and "by ana: bad deploy" in status
    assert runner.invoke(args=["billing", "resume", "--app", "nope"]).exit_code != 0
    assert "resumed for app(s) acme" in runner.invoke(args=["billing", "resume", "--app", "acme"]).output
    assert "resumed first: acme" in runner.invoke(args=["billing", "status"]).output
    assert "every app" in runner.invoke(args=["billing", "resume"]).output
    assert "not paused" in runner.invoke(args=["billing", "resume"]).output

    notice = runner.invoke(args=["billing", "notice", "--app", "acme", "--subject", "Back", "--body", "All good"])
    assert "1 message(s) to the owners of 1 app(s)" in notice.output
    recorded = runner.invoke(args=["release", "record", "--version", "2026.12.04-1", "--git-revision", "abc123",
                                   "--by", "deploy-bot"])
    assert recorded.exit_code == 0 and "2026.12.04-1 at abc123 (sandbox), by deploy-bot" in recorded.output
    listing = runner.invoke(args=["release", "list"]).output
    assert listing.index("release ") < listing.index("incident_notice") < listing.index("billing_paused")
    with app.app_context():
        entry = db.session.scalar(select(Release).where(Release.kind == ReleaseKind.RELEASE))
        assert (entry.version, entry.git_revision, entry.gateway_mode, entry.actor) == (
            "2026.12.04-1", "abc123", "sandbox", "deploy-bot")
        assert db.session.scalar(select(AuditLog).where(AuditLog.action == "release.recorded")).actor == "cli"


def test_the_gateway_mode_is_recorded_at_start_up_once_per_change(app, app_config):
    record_gateway_mode_at_start(app)
    create_app({**app_config, "RECORD_GATEWAY_MODE": True})  # another process starting: nothing new
    assert _ledger(app) == [("gateway_mode", "startup")]
    with app.app_context():
        assert releases.record_gateway_mode(db.session, "stripe-test") is not None  # switched to real Stripe
        assert releases.record_gateway_mode(db.session, "stripe-test") is None
        db.session.commit()
    record_gateway_mode_at_start(app)  # back on the sandbox
    with app.app_context():
        modes = [r.gateway_mode for r in db.session.scalars(select(Release).order_by(Release.id))]
        assert modes == ["sandbox", "stripe-test", "sandbox"]
        changes = db.session.scalars(select(AuditLog).where(AuditLog.action == "gateway.mode_changed")
                                     .order_by(AuditLog.id)).all()
        assert [(c.before["gateway_mode"], c.after["gateway_mode"]) for c in changes] == [
            (None, "sandbox"), ("sandbox", "stripe-test"), ("stripe-test", "sandbox")]

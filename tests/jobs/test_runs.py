"""Job runs: one launch at a time, one successful run per window, one tenant's failure never aborts a batch."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from billing import clock
from billing.models import AttemptStatus, JobRun, KernelInvoice, KernelPaymentAttempt
from jobs.dunning import run_now
from billing.runs import Batch, claim_run, finish_run
from portal.extensions import db
from tests.helpers.data import invoice_row
from tests.helpers.dunning import advance_to, day

START = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)


def test_a_running_job_is_not_launched_twice(app):
    clock.use(clock.MovableClock(START))
    with app.app_context():
        first = claim_run(db.session, "dunning")
        assert first is not None and first.run_key == "dunning:running"
        assert claim_run(db.session, "dunning") is None
        assert claim_run(db.session, "reconciliation") is not None  # another job is another slot
        finish_run(db.session, first, Batch(db.session, "dunning"))
        assert claim_run(db.session, "dunning") is not None


def test_a_window_done_is_not_run_again_but_a_failed_one_is(app):
    clock.use(clock.MovableClock(START))
    with app.app_context():
        failed = claim_run(db.session, "dunning", window="2026-12-01")
        finish_run(db.session, failed, Batch(db.session, "dunning"), error="database went away")
        assert failed.run_key == f"dunning:failed:{failed.id}"
        retried = claim_run(db.session, "dunning", window="2026-12-01")
        assert retried is not None
        finish_run(db.session, retried, Batch(db.session, "dunning"))
        assert retried.run_key == "dunning:2026-12-01" and retried.status == "succeeded"
        assert claim_run(db.session, "dunning", window="2026-12-01") is None
        assert claim_run(db.session, "dunning", window="2026-12-02") is not None


def test_a_run_whose_worker_died_stops_blocking_after_a_while(app):
    moving = clock.MovableClock(START)
    clock.use(moving)
    with app.app_context():
        dead = claim_run(db.session, "reconciliation")
        moving.advance(timedelta(minutes=30))
        assert claim_run(db.session, "reconciliation") is None
        moving.advance(timedelta(hours=2))
        fresh = claim_run(db.session, "reconciliation")
        assert fresh is not None
        db.session.refresh(dead)
        assert (dead.status, dead.error, dead.run_key) == ("failed", "abandoned", f"reconciliation:abandoned:{dead.id}")


def test_a_failing_item_is_rolled_back_counted_and_skipped(app, tenant):
    with app.app_context():
        batch = Batch(db.session, "test")
        for number in (1, 2, 3):
            with batch.item(f"invoice {number}"):
                db.session.add(KernelInvoice(app_id=tenant.id, stripe_invoice_id=f"in_{number}", status="open",
                                             amount_due=100, amount_paid=0, currency="BRL"))
                if number == 2:
                    raise RuntimeError("Stripe said no")
        assert (batch.processed, batch.failed) == (2, 1)
        assert batch.errors == ["invoice 2: RuntimeError: Stripe said no"]
        assert set(db.session.scalars(select(KernelInvoice.stripe_invoice_id))) == {"in_1", "in_3"}


def test_one_tenants_failure_does_not_abort_the_dunning_batch(billing_app, dunning, other_tenant):
    with billing_app.app_context():  # a dunning whose invoice Stripe does not know: every step on it fails
        broken = KernelInvoice(app_id=other_tenant.id, stripe_invoice_id="in_unknown_to_stripe", status="open",
                               amount_due=9900, amount_paid=0, currency="BRL")
        db.session.add(broken)
        db.session.flush()
        db.session.add(KernelPaymentAttempt(app_id=other_tenant.id, invoice_id=broken.id, attempt_number=0,
                                            status=AttemptStatus.FAILED, attempted_at=dunning.failed_at))
        db.session.commit()
        broken_id = broken.id
    advance_to(billing_app, day(dunning, 2))
    run_now()
    advance_to(billing_app, day(dunning, 3))
    result = run_now()
    assert (result["processed"], result["failed"]) == (1, 1)
    with billing_app.app_context():
        run = db.session.get(JobRun, result["run"])
        assert run.status == "succeeded" and run.details["steps"] == {"retry_failed": 1}
        assert run.details["errors"][0].startswith(f"invoice {broken_id}: NotFound")
    assert invoice_row(billing_app, dunning.invoice_id).attempt_count == 2  # the healthy tenant's retry happened

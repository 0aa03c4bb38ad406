"""While billing is paused the dunning job charges nothing, announces nothing and cancels nothing; it catches up
after the resume."""
from __future__ import annotations

from sqlalchemy import select

from billing.models import JobRun, KernelPaymentAttempt
from jobs.dunning import run_now
from portal.extensions import db
from portal.payments import gateway
from tests.helpers.control import pause, resume
from tests.helpers.dunning import advance_to, day


def _run_on(application, dunning, number: int) -> dict:
    advance_to(application, day(dunning, number))
    result = run_now()
    assert result and result["status"] == "succeeded", result
    with application.app_context():
        return db.session.get(JobRun, result["run"]).details["steps"]


def test_a_paused_dunning_makes_no_charge_and_resumes_where_it_stood(billing_app, dunning):
    pause(billing_app)
    for number in (2, 3, 7, 8):  # notice day, retry day, last retry day, the day it would give up
        assert _run_on(billing_app, dunning, number) == {"held": 1}
    with billing_app.app_context():
        assert gateway().retrieve_invoice(dunning.invoice_id).attempt_count == 1  # the failed renewal only
        numbers = db.session.scalars(select(KernelPaymentAttempt.attempt_number)).all()
        assert numbers == [0]
        assert gateway().retrieve_subscription(dunning.subscription_id).status == "past_due"  # not canceled
    resume(billing_app)
    assert _run_on(billing_app, dunning, 9) == {"notified": 1}  # retry #1 announced before any charge

"""What a page reads from the database (issue #16, finding 13: pages under a small crowd)."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select

from billing.dunning import outstanding_invoice
from billing.models import (
    AppSubscription, AttemptStatus, DunningOutcome, KernelInvoice, KernelPaymentAttempt, KernelPlan,
)
from billing.states import SubscriptionStatus
from portal.extensions import db
from tests.helpers.data import make_app, short_session

NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)


def _statements(app) -> list[str]:
    """Every SQL statement the portal runs from now on (BEGIN and COMMIT aside)."""
    with app.app_context():
        engine = db.engine
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: seen.append(statement)
                 if statement.lstrip()[:6].upper() not in ("BEGIN", "COMMIT") else None)
    return seen


def _on_pro(app, *app_ids: int) -> None:
    with short_session(app) as session:
        pro = session.scalar(select(KernelPlan).where(KernelPlan.code == "pro"))
        for app_id in app_ids:
            session.add(AppSubscription(app_id=app_id, plan_id=pro.id, status=SubscriptionStatus.ACTIVE,
                                        stripe_customer_id=f"cus_{app_id}", stripe_subscription_id=f"sub_{app_id}",
                                        current_period_start=NOW - timedelta(days=5),
                                        current_period_end=NOW + timedelta(days=25)))


def test_an_app_page_asks_for_the_invoice_to_pay_once(app, owner_client, tenant):
    """The dunning banner and the billing page both show it: one read per request (billing_attention)."""
    statements = _statements(app)
    assert owner_client.get(f"/apps/{tenant.id}/billing").status_code == 200
    reads = [statement for statement in statements if "FROM kernel_invoices" in statement]
    # outstanding_invoice: one query finds the invoice in dunning, or else any open invoice.
    assert len(reads) == 1


def test_the_notices_page_reads_the_invoice_to_pay_once(app, owner_client, tenant):
    """The page's dunning status and the banner above it are the same read."""
    statements = _statements(app)
    assert owner_client.get(f"/apps/{tenant.id}/notices").status_code == 200
    assert len([statement for statement in statements if "FROM kernel_invoices" in statement]) == 1


def test_an_app_page_checks_ownership_in_the_same_read_as_the_app(app, owner_client, tenant, other_tenant):
    """The app is read joined to its owners; the list of owners is not loaded to check who may see it."""
    statements = _statements(app)
    assert owner_client.get(f"/apps/{tenant.id}/invoices").status_code == 200
    assert [s for s in statements if "FROM apps" in s and "app_owners" in s]
    assert not [s for s in statements if "FROM users, app_owners" in s or "FROM users JOIN app_owners" in s]
    assert owner_client.get(f"/apps/{other_tenant.id}/invoices").status_code == 404


def test_the_dashboard_reads_the_same_whatever_the_number_of_apps(app, owner, owner_client, tenant):
    """Each row's plan and state come with the apps, not from one lazy load per row."""
    _on_pro(app, tenant.id)
    statements = _statements(app)
    assert owner_client.get("/dashboard").status_code == 200
    with_one = len(statements)

    more = [make_app(app, f"Acme {n}", owner, slug=f"acme-{n}").id for n in range(3)]
    _on_pro(app, *more)
    statements.clear()
    page = owner_client.get("/dashboard", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert len(statements) == with_one
    assert page.count("Pro</span>") == 4 and page.count('data-state="active"') == 4


def test_a_superadmin_dashboard_reads_the_same_whatever_the_number_of_apps(app, superadmin_client, tenant,
                                                                          other_tenant, other_owner):
    """A superadmin's rows also name each app's owners: read for all the apps at once."""
    statements = _statements(app)
    assert superadmin_client.get("/dashboard").status_code == 200
    with_two = len(statements)

    for n in range(3):
        make_app(app, f"Bravo {n}", other_owner, slug=f"bravo-{n}")
    statements.clear()
    page = superadmin_client.get("/dashboard").get_data(as_text=True)
    assert len(statements) == with_two
    assert page.count("owner@bravo.test") == 4 and "owner@acme.test" in page


@pytest.mark.parametrize("page, most", [("", 7), ("/billing", 6), ("/invoices", 5), ("/notices", 5)])
def test_each_app_page_keeps_to_its_reads(app, owner_client, tenant, page, most):
    """The session's user, the app (with ownership), the billing pause, the invoice to pay, and the page's own
    (before this work: billing 10, invoices 8, notices 9)."""
    _on_pro(app, tenant.id)
    statements = _statements(app)
    assert owner_client.get(f"/apps/{tenant.id}{page}").status_code == 200
    assert len(statements) <= most, "\n".join(" ".join(s.split())[:120] for s in statements)


# ---------------------------------------------------------------- the invoice to pay, in one query


def _invoice(session, app_id: int, number: str, remaining: int, status: str = "open",
             first_try_failed: bool = False, outcome: DunningOutcome | None = None) -> KernelInvoice:
    invoice = KernelInvoice(app_id=app_id, stripe_invoice_id=f"in_{number}", number=number, status=status,
                            amount_due=9900, amount_paid=9900 - remaining, amount_remaining=remaining, currency="BRL",
                            dunning_outcome=outcome)
    session.add(invoice)
    session.flush()
    if first_try_failed:
        session.add(KernelPaymentAttempt(invoice_id=invoice.id, app_id=app_id, attempt_number=0,
                                         status=AttemptStatus.FAILED, attempted_at=NOW))
        session.flush()
    return invoice


def test_the_invoice_to_pay_is_the_one_in_dunning_before_a_newer_open_one(app, tenant):
    with app.app_context():
        assert outstanding_invoice(db.session, tenant.id) is None
        _invoice(db.session, tenant.id, "ZERO", remaining=0)  # open, nothing left, not in dunning: nothing to pay
        assert outstanding_invoice(db.session, tenant.id) is None
        failing = _invoice(db.session, tenant.id, "OLD", remaining=9900, first_try_failed=True)
        _invoice(db.session, tenant.id, "NEW", remaining=9900)
        assert outstanding_invoice(db.session, tenant.id).number == "OLD"
        failing.dunning_outcome = DunningOutcome.EXHAUSTED  # still owed after the last retry
        assert outstanding_invoice(db.session, tenant.id).number == "OLD"
        failing.dunning_outcome = DunningOutcome.PAID
        assert outstanding_invoice(db.session, tenant.id).number == "NEW"
        failing.status = "paid"
        _invoice(db.session, tenant.id, "PAID", remaining=0, status="paid", first_try_failed=True)
        assert outstanding_invoice(db.session, tenant.id).number == "NEW"
        db.session.rollback()

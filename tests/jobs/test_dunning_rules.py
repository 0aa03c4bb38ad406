"""The rules around dunning that need no Stripe: the calendar, and when a paused app runs again."""
from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import select

from billing.dunning import DunningContext, resume_if_settled, retry_dates
from billing.models import App, AppStatus, AppSubscription, AuditLog, KernelInvoice
from billing.plans import plan_by_code
from billing.states import SubscriptionStatus
from billing.audit import Origin
from portal.extensions import db

NOW = datetime(2026, 12, 10, 12, tzinfo=timezone.utc)


def test_retry_days_are_sao_paulo_calendar_days():
    # 01:30 UTC on the 1st is still the 30th of November in São Paulo.
    assert retry_dates(datetime(2026, 12, 1, 1, 30, tzinfo=timezone.utc)) == [
        date(2026, 12, 3), date(2026, 12, 5), date(2026, 12, 7)]


def _paused_with_debt(app_id: int) -> None:
    tenant = db.session.get(App, app_id)
    tenant.status, tenant.paused_reason, tenant.paused_at = AppStatus.PAUSED, "payment failed", NOW
    db.session.add(KernelInvoice(app_id=app_id, stripe_invoice_id="in_owed", status="open", amount_due=9900,
                                 amount_paid=0, currency="BRL", dunning_outcome="exhausted", dunning_closed_at=NOW))
    db.session.commit()


def test_a_paused_app_runs_again_when_it_subscribes_again(app, tenant):
    ctx = DunningContext(gateway=None, now=NOW, origin=Origin(actor="job:dunning"))
    with app.app_context():
        _paused_with_debt(tenant.id)
        tenant_row = db.session.get(App, tenant.id)
        assert resume_if_settled(db.session, tenant_row, ctx) is False
        assert tenant_row.status == AppStatus.PAUSED

        db.session.add(AppSubscription(app_id=tenant.id, plan=plan_by_code(db.session, "pro"),
                                       status=SubscriptionStatus.ACTIVE, stripe_customer_id="cus_1",
                                       stripe_subscription_id="sub_again"))
        db.session.flush()
        db.session.refresh(tenant_row)
        assert resume_if_settled(db.session, tenant_row, ctx) is True
        db.session.commit()
        assert tenant_row.status == AppStatus.ACTIVE and tenant_row.paused_reason is None
        resumed = db.session.scalar(select(AuditLog).where(AuditLog.action == "app.resumed"))
        assert resumed.after == {"status": "active", "because": "subscribed_again"}
        assert resumed.before["status"] == "paused"

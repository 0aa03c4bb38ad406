"""What a page reads from the database (issue #16, finding 13: pages under a small crowd)."""
from sqlalchemy import event


def test_an_app_page_asks_for_the_invoice_to_pay_once(app, owner_client, tenant):
    """The dunning banner and the billing page both show it: one read per request (billing_attention)."""
    from portal.extensions import db

    with app.app_context():
        engine = db.engine
    reads = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: reads.append(statement) if "FROM kernel_invoices" in statement else None)
    assert owner_client.get(f"/apps/{tenant.id}/billing").status_code == 200
    # outstanding_invoice: one query for an invoice in dunning, one for any open invoice.
    assert len(reads) == 2

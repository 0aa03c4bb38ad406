"""Bulk seeding for benchmarks: many customers, active subscriptions and paid invoices, fast.

Rows are built from the same builders as the API uses and written with
``executemany`` in one transaction. No events, webhooks, PaymentIntents or
charges are made for seeded data (their invoices show as paid out of band),
and the subscription items are only embedded in their subscriptions.

With ``test_clock`` everything seeded lives on that clock (its ``frozen_time`` is
"now"), and with ``card`` (a test card's key, e.g. ``visa``) each customer gets
that card as its subscription's default payment method: advancing the clock
then renews every seeded subscription as the API would (events, PaymentIntents,
charges), which is how a benchmark makes a month of realistic renewals.
"""

from __future__ import annotations

import json
import time
from typing import Any

from . import cards, clock
from .clock import add_months, period_end_after
from .errors import InvalidRequest
from .money import format_price
from .objects.customers import customer as build_customer
from .objects.invoices import invoice as build_invoice, line_item
from .objects.payments import payment_method as build_payment_method
from .objects.subscriptions import subscription as build_subscription, subscription_item as build_item
from .ids import new_id
from .store import _columns

INSERT = ("INSERT INTO objects (id, type, created, customer, subscription, status, parent, ref, due_at, data, extra,"
          " clock) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")


def _row(obj: dict[str, Any], due_at: int | None = None, extra: dict[str, Any] | None = None) -> tuple[Any, ...]:
    columns = _columns(obj)
    return (obj["id"], obj["object"], int(obj["created"]), columns["customer"], columns["subscription"],
            columns["status"], columns["parent"], columns["ref"], due_at,
            json.dumps(obj, separators=(",", ":")), json.dumps(extra) if extra is not None else None,
            obj.get("test_clock"))


def bulk_seed(box: Any, base_url: str, count: int, per_subscription: int, price_id: str,
              test_clock: str | None = None, card: str | None = None) -> dict[str, Any]:
    if count > 1_000_000 or per_subscription > 100:
        raise InvalidRequest("At most 1,000,000 subscriptions and 100 invoices per subscription.")
    if card is not None and card not in cards.BY_KEY:
        raise InvalidRequest(f"No such test card: '{card}'", param="card")
    started = time.monotonic()
    with box.store.write() as db:
        price = db.get(price_id)
        if price is None or price.get("object") != "price" or not price.get("recurring"):
            raise InvalidRequest(f"No such recurring price: '{price_id}'", code="resource_missing", param="price")
        product = db.get(price["product"]) or {"name": price["product"]}
        now = clock.wall_now()
        if test_clock is not None:
            on_clock = clock.load_clock(db, test_clock)
            if on_clock is None:
                raise InvalidRequest(f"No such test clock: '{test_clock}'", code="resource_missing",
                                     param="test_clock")
            now = int(on_clock["frozen_time"])
        interval, interval_count = price["recurring"]["interval"], price["recurring"]["interval_count"]
        months = {"month": 1, "year": 12}.get(interval)
        if months is None:
            raise InvalidRequest("bulk_seed supports monthly and yearly prices.", param="price")
        step = months * interval_count
        # Start far enough back that the subscription has K periods behind or at now.
        anchor = add_months(now, -step * max(per_subscription - 1, 0)) - 60
        description = f"1 × {product['name']} (at {format_price(price['unit_amount'], price['currency'], price['recurring'])})"
        amount = price["unit_amount"]
        rows: list[tuple[Any, ...]] = []
        invoice_total = 0
        # Every seeded subscription shares the same calendar: work it out once.
        current_start = add_months(anchor, step * max(per_subscription - 1, 0))
        current_end = period_end_after(anchor, current_start, interval, interval_count)
        periods = []
        for period in range(per_subscription):
            start, end = add_months(anchor, step * period), add_months(anchor, step * (period + 1))
            previous = start if period == 0 else add_months(anchor, step * (period - 1))
            periods.append((period, start, end, previous))
        for index in range(count):
            customer = build_customer(anchor, email=f"bulk{index}@example.test", name=f"Bulk customer {index}",
                                      description=None, phone=None, metadata={"bulk_seed": "1"},
                                      default_payment_method=None)
            customer["next_invoice_sequence"] = per_subscription + 1
            customer["test_clock"] = test_clock
            method = None
            if card is not None:
                expiry_year = time.gmtime(now).tm_year + 3
                pm = build_payment_method(anchor, cards.details_for(card, 12, expiry_year), customer=customer["id"],
                                          name=customer["name"], email=customer["email"], metadata={})
                rows.append(_row(pm, extra={"card": card}))
                method = pm["id"]
                customer["invoice_settings"]["default_payment_method"] = method
            sub_id = new_id("sub")
            item = build_item(anchor, subscription_id=sub_id, price=price, quantity=1,
                              period_start=current_start, period_end=current_end)
            sub = build_subscription(anchor, subscription_id=sub_id, customer=customer["id"],
                                     currency=price["currency"], items=[item], default_payment_method=None,
                                     metadata={"bulk_seed": "1"}, status="active", anchor=anchor,
                                     trial_start=None, trial_end=None)
            sub["test_clock"] = test_clock
            sub["default_payment_method"] = method
            rows.append(_row(customer))
            latest = None
            for period, start, end, previous in periods:
                invoice_id = new_id("in")
                inv = build_invoice(start, invoice_id=invoice_id, customer=customer, currency=price["currency"],
                                    subscription_id=sub_id, subscription_metadata=sub["metadata"],
                                    billing_reason="subscription_create" if period == 0 else "subscription_cycle",
                                    period_start=previous, period_end=start, default_payment_method=None,
                                    base_url=base_url)
                line = line_item(invoice_id=invoice_id, amount=amount, currency=price["currency"],
                                 description=description, period_start=start, period_end=end, price=price,
                                 quantity=1, subscription_id=sub_id, subscription_item_id=item["id"],
                                 proration=False)
                inv["lines"]["data"] = [line]
                inv.update(number=f"{customer['invoice_prefix']}-{period + 1:04d}", status="paid",
                           subtotal=amount, subtotal_excluding_tax=amount, total=amount, total_excluding_tax=amount,
                           amount_due=amount, amount_paid=amount, amount_remaining=0, attempted=True,
                           attempt_count=0, starting_balance=0, ending_balance=0, effective_at=start)
                inv["status_transitions"].update(finalized_at=start, paid_at=start)
                inv["test_clock"] = test_clock
                rows.append(_row(inv))
                latest = invoice_id
                invoice_total += 1
            sub["latest_invoice"] = latest
            rows.append(_row(sub, due_at=current_end))
            if len(rows) >= 20000:
                db.conn.executemany(INSERT, rows)
                rows.clear()
        if rows:
            db.conn.executemany(INSERT, rows)
    return {"customers": count, "subscriptions": count, "invoices": invoice_total,
            "seconds": round(time.monotonic() - started, 3)}

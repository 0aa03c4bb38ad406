"""axe-core finds no violation on any page an owner or a superadmin can reach, in Chromium, and
at 390 px (a phone) no page is wider than the screen.

The pages are found by following links from the dashboard and the admin home (as each kind of user
would), with data that lights up every section: one app in dunning, one on Pro, one on Enterprise, a failed Stripe event,
a reconciliation run, open alerts and notices. A page of the URL map that no link reaches fails the
test, so a new page is checked the day it is added (or listed below with the reason it is skipped).
"""
from __future__ import annotations

import json
import re
from urllib.parse import urldefrag, urlsplit

import pytest
from werkzeug.exceptions import HTTPException

from billing.models import ProcessedWebhook, WebhookStatus
from billing.reconciliation import reconcile
from portal.extensions import db
from portal.payments import gateway
from tests.browser.axe import describe, violations
from tests.helpers.data import make_app, short_session
from tests.flows.browser_steps import sign_in_as
from tests.helpers.dunning import fail_renewal, subscribe_directly

pytestmark = pytest.mark.browser

# GET endpoints that are not pages: redirects, JSON, files, Stripe's way back.
NOT_PAGES = {"static", "dashboard.home", "auth.login", "subscriptions.checkout_success",
             "subscriptions.checkout_canceled", "notices.pay_complete", "webhooks.stripe"}
# Not pages: the JSON APIs and webhooks, the gateway API's OpenAPI document and refund status, probes and metrics,
# CSV downloads.
SKIP_PREFIXES = ("/static/", "/api/", "/webhooks/", "/logout", "/billing/reconciliation", "/billing/openapi.json",
                 "/billing/refunds/", "/healthz", "/readyz", "/metrics", "/admin/dashboard.csv",
                 "/admin/subscriptions.csv", "/admin/invoices.csv")
MAX_PAGES = 120
FILE_SUFFIXES = (".csv", ".json", ".pdf")  # downloads (the admin's CSV exports), not pages


def _is_file(path: str) -> bool:
    return urlsplit(path).path.endswith(FILE_SUFFIXES)

# What sticks out at phone width, to say what to fix.
WIDEST = """() => Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > 391).slice(-5)
  .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


@pytest.fixture
def every_kind_of_data(billing_app, tenant, other_tenant, other_owner):
    subscribe_directly(billing_app, tenant.id)
    fail_renewal(billing_app, tenant.id)
    subscribe_directly(billing_app, other_tenant.id)
    subscribe_directly(billing_app, make_app(billing_app, "Charlie Maps", other_owner, slug="charlie").id,
                       plan="enterprise")
    with short_session(billing_app) as session:
        session.add(ProcessedWebhook(event_id="evt_axe_failed", type="invoice.paid", object_id="in_missing",
                                     created=1796406133, livemode=False, status=WebhookStatus.FAILED, attempts=3,
                                     payload=json.dumps({"id": "evt_axe_failed", "type": "invoice.paid"}),
                                     last_error="NotFound: no such invoice"))
    with billing_app.app_context():
        reconcile(db.session, gateway(), trigger="test")
        db.session.commit()


def _page_key(url: str, per_app: bool = True) -> str:
    """One visit per page, app (``per_app``: each app is in another state) and set of query arguments:
    /apps/3/invoices/7 and /apps/3/invoices/9 are one page."""
    parts = urlsplit(url)
    names = sorted({pair.split("=")[0] for pair in parts.query.split("&") if pair})
    path = re.sub(r"(?<!/apps)/\d+" if per_app else r"/\d+", "/N", parts.path)
    return path + ("?" + "&".join(names) if names else "")


def _crawl(page, base: str, starts: list[str], per_app: bool = True) -> dict[str, list[dict]]:
    queue, seen, found = [base + path for path in starts], set(), {}
    while queue and len(seen) < MAX_PAGES:
        url = urldefrag(queue.pop(0)).url
        key = _page_key(url, per_app)
        if key in seen:
            continue
        seen.add(key)
        response = page.goto(url)
        assert response.status == 200, (url, response.status)
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        page.set_viewport_size({"width": 1280, "height": 800})
        found[page.url] = violations(page)
        page.set_viewport_size({"width": 390, "height": 844})
        width = page.evaluate("() => document.documentElement.scrollWidth")
        if width > 390:
            found[page.url].append({"id": "phone-overflow", "impact": "layout", "help": f"{width} px wide at 390 px",
                                    "nodes": page.evaluate(WIDEST)})
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            path = href[len(base):] if href.startswith(base) else None
            if path and not path.startswith(SKIP_PREFIXES) and not _is_file(path) and _page_key(href, per_app) not in seen:
                queue.append(href)
    return found


def test_no_axe_violation_on_any_owner_or_admin_page(page, browser, billing_app, billing_server, owner, other_owner,
                                                     superadmin, every_kind_of_data):
    found = {}
    # The owners see each app in its state; the superadmin sees the same pages read-only, so one app of each page.
    for user, starts, per_app in ((owner, ["/dashboard"], True), (other_owner, ["/dashboard"], True),
                                  (superadmin, ["/admin/", "/dashboard"], False)):
        context = browser.new_context(locale="pt-BR", viewport={"width": 1280, "height": 800})
        tab = context.new_page()
        sign_in_as(tab, billing_server, user)
        found.update(_crawl(tab, billing_server.url, starts, per_app))
        context.close()

    bad = {url: listed for url, listed in found.items() if listed}
    assert not bad, describe(bad)

    adapter = billing_app.url_map.bind("localhost")
    reached = set()
    for url in found:
        try:
            reached.add(adapter.match(urlsplit(url).path, method="GET")[0])
        except HTTPException:
            pass
    pages = {rule.endpoint for rule in billing_app.url_map.iter_rules()
             if "GET" in rule.methods and rule.endpoint not in NOT_PAGES and not rule.rule.startswith(SKIP_PREFIXES)
             and not _is_file(rule.rule)}
    assert pages - reached == set(), "pages no link reaches (link them, or list them in NOT_PAGES with why)"

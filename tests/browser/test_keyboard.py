"""Keyboard and browser basics in Chromium: the first Tab reaches "skip to content", which lands on the page's
content; the JSON payload of an event scrolls from the keyboard; no page asks for a missing favicon."""
import json

import pytest
from playwright.sync_api import expect

from billing.models import ProcessedWebhook, WebhookStatus
from tests.helpers.data import short_session
from tests.flows.browser_steps import sign_in_as

pytestmark = pytest.mark.browser


def test_skip_link_payload_and_favicon(page, app, live_server, superadmin):
    with short_session(app) as session:
        event = ProcessedWebhook(event_id="evt_keys", type="invoice.paid", object_id="in_1", created=1796406133,
                                 livemode=False, status=WebhookStatus.PROCESSED,
                                 payload=json.dumps({"description": "x" * 3000}))
        session.add(event)
    missing = []
    page.on("response", lambda response: response.status == 404 and missing.append(response.url))
    sign_in_as(page, live_server, superadmin)

    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Pular para o conteúdo")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()

    page.goto(f"{live_server.url}/admin/events/{event.id}")
    payload = page.locator("#payload")
    payload.focus()
    expect(payload).to_be_focused()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.getElementById('payload').scrollLeft > 0", timeout=5000)
    assert not missing, missing

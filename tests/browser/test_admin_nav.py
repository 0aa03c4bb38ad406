"""The admin's tabs: at 1280 px (the usual laptop) every tab is on screen, none cut off or hidden behind a
sideways scroll; at 390 px (a phone) they stay on one line that scrolls sideways. Screenshots of both."""
import pytest
from playwright.sync_api import expect

from tests.flows.browser_steps import sign_in_as

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def _tabs_and_nav(page):
    return page.locator("nav.subnav a"), page.locator("nav.subnav")


def test_every_admin_tab_is_in_view_at_1280_px(page, live_server, superadmin, screenshot):
    page.set_viewport_size(LAPTOP)
    sign_in_as(page, live_server, superadmin)
    page.goto(f"{live_server.url}/admin/operations")
    tabs, nav = _tabs_and_nav(page)
    assert tabs.count() >= 12
    # Nothing scrolls inside the bar, and the page itself is no wider than the window.
    assert nav.evaluate("bar => bar.scrollWidth <= bar.clientWidth")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= LAPTOP["width"]
    bar = nav.bounding_box()
    for i in range(tabs.count()):
        tab = tabs.nth(i)
        expect(tab).to_be_in_viewport(ratio=1)
        box = tab.bounding_box()
        assert bar["x"] <= box["x"] and box["x"] + box["width"] <= bar["x"] + bar["width"] + 0.5, tab.inner_text()
        assert tab.evaluate("a => a.scrollWidth <= a.clientWidth"), f"{tab.inner_text()} is cut"
    expect(page.locator("nav.subnav a.active")).to_have_text("Operações")
    screenshot(page, "admin-tabs-1280")


def test_the_admin_tabs_scroll_sideways_on_one_line_at_390_px(page, live_server, superadmin, screenshot):
    page.set_viewport_size(PHONE)
    sign_in_as(page, live_server, superadmin)
    page.goto(f"{live_server.url}/admin/operations")
    tabs, nav = _tabs_and_nav(page)
    assert len({round(tabs.nth(i).bounding_box()["y"]) for i in range(tabs.count())}) == 1
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    tabs.last.focus()
    expect(tabs.last).to_be_in_viewport()
    screenshot(page, "admin-tabs-390")

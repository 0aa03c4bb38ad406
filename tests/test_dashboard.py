"""Owners see only their apps; superadmins see every tenant; the sandbox banner shows the mode."""
from portal import create_app
from tests.helpers.data import make_app


def test_owner_dashboard_lists_only_their_apps(owner_client, tenant, other_tenant):
    page = owner_client.get("/dashboard").get_data(as_text=True)
    assert "Acme Analytics" in page
    assert "Bravo Delivery" not in page


def test_owner_with_two_apps_sees_both(app, owner_client, owner, tenant):
    make_app(app, "Acme Mobile", owner)
    page = owner_client.get("/dashboard").get_data(as_text=True)
    assert "Acme Analytics" in page and "Acme Mobile" in page


def test_dashboard_shows_plan_and_status(owner_client, tenant):
    page = owner_client.get("/dashboard", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Free" in page


def test_owner_can_open_their_app_but_not_anothers(owner_client, tenant, other_tenant):
    assert owner_client.get(f"/apps/{tenant.id}").status_code == 200
    assert owner_client.get(f"/apps/{other_tenant.id}").status_code == 404
    assert owner_client.get("/apps/999999").status_code == 404


def test_superadmin_area_lists_all_tenants(superadmin_client, tenant, other_tenant):
    page = superadmin_client.get("/admin/").get_data(as_text=True)
    assert "Acme Analytics" in page and "Bravo Delivery" in page
    assert "owner@acme.test" in page


def test_superadmin_can_open_any_app(superadmin_client, other_tenant):
    assert superadmin_client.get(f"/apps/{other_tenant.id}").status_code == 200


def test_owner_cannot_see_the_superadmin_area(owner_client):
    assert owner_client.get("/admin/").status_code == 404


def test_admin_link_only_for_superadmins(owner_client, superadmin_client):
    assert b'href="/admin/"' not in owner_client.get("/dashboard").data
    assert b'href="/admin/"' in superadmin_client.get("/dashboard").data


def test_sandbox_banner_shows_in_sandbox_mode(client):
    page = client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Sandbox mode: no real charges" in page


def test_no_sandbox_banner_with_the_real_gateway(app_config):
    app = create_app({**app_config, "BILLING_GATEWAY_ENABLE_REAL": True})
    page = app.test_client().get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Sandbox mode" not in page
    assert "Sign in" in page

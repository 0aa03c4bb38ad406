"""Revocable sessions: cookies name the user's session token, which sign-out, a password change,
"sign out everywhere" and a superadmin's revocation replace. Tested with cookies copied to another browser."""
from datetime import datetime, timezone

from sqlalchemy import select

from billing.models import AuditLog, User
from tests.helpers.data import PASSWORD, short_session

NEW_PASSWORD = "another-horse-battery-staple"


def _copy(app, source, *names):
    """A second browser holding copies of ``source``'s cookies (a stolen cookie, a shared computer)."""
    thief = app.test_client()
    for name in names:
        cookie = source.get_cookie(name)
        assert cookie is not None, name
        thief.set_cookie(name, cookie.value)
    return thief


def _sign_in(app, email, password=PASSWORD, remember=False):
    client = app.test_client()
    data = {"email": email, "password": password}
    if remember:
        data["remember"] = "y"
    response = client.post("/login", data=data)
    assert response.status_code == 302, response.status_code
    return client


def _signed_in(client) -> bool:
    return client.get("/dashboard").status_code == 200


def test_a_copied_session_cookie_dies_with_sign_out(app, owner, tenant):
    browser = _sign_in(app, owner.email)
    copy = _copy(app, browser, "session")
    assert _signed_in(copy)
    browser.post("/logout")
    assert not _signed_in(browser)
    assert not _signed_in(copy)


def test_remember_me_lasts_thirty_days_and_dies_with_sign_out(app, owner, tenant):
    browser = _sign_in(app, owner.email, remember=True)
    remember = browser.get_cookie("remember_token")
    assert remember is not None
    lifetime = remember.expires - datetime.now(timezone.utc)
    assert 29 <= lifetime.days <= 30
    assert not remember.value.startswith(f"{owner.id}|")  # no longer the user id, the same at every sign-in
    stolen = _copy(app, browser, "remember_token")  # only the remember-me cookie, no session
    assert _signed_in(stolen)
    browser.post("/logout")
    assert not _signed_in(stolen)
    late_thief = app.test_client()
    late_thief.set_cookie("remember_token", remember.value)
    assert not _signed_in(late_thief)


def test_each_sign_in_after_a_sign_out_gets_a_new_remember_me_cookie(app, owner, tenant):
    first = _sign_in(app, owner.email, remember=True).get_cookie("remember_token").value
    browser = _sign_in(app, owner.email, remember=True)
    assert browser.get_cookie("remember_token").value == first  # same token until something revokes it
    browser.post("/logout")
    assert _sign_in(app, owner.email, remember=True).get_cookie("remember_token").value != first


def test_a_password_change_signs_out_every_other_browser(app, owner, tenant):
    here = _sign_in(app, owner.email)
    laptop = _sign_in(app, owner.email, remember=True)
    laptop_copy = _copy(app, laptop, "remember_token")
    wrong = here.post("/account", data={"current_password": "not-it", "new_password": NEW_PASSWORD,
                                        "confirm": NEW_PASSWORD})
    assert wrong.status_code == 400 and _signed_in(laptop)  # a wrong current password changes nothing
    changed = here.post("/account", data={"current_password": PASSWORD, "new_password": NEW_PASSWORD,
                                          "confirm": NEW_PASSWORD})
    assert changed.status_code == 302
    assert _signed_in(here)
    assert not _signed_in(laptop) and not _signed_in(laptop_copy)
    assert app.test_client().post("/login", data={"email": owner.email, "password": PASSWORD}).status_code == 401
    _sign_in(app, owner.email, NEW_PASSWORD)


def test_sign_out_everywhere(app, owner, tenant):
    phone = _sign_in(app, owner.email, remember=True)
    desk = _sign_in(app, owner.email)
    assert desk.get("/account").status_code == 200
    response = desk.post("/account/sign-out-everywhere")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert not _signed_in(desk) and not _signed_in(phone)
    assert not _signed_in(_copy(app, phone, "remember_token"))


def test_a_superadmin_revokes_a_users_sessions(app, owner, tenant, superadmin):
    browser = _sign_in(app, owner.email, remember=True)
    stolen = _copy(app, browser, "session", "remember_token")
    # An owner cannot revoke anyone (not even see that the page exists).
    assert browser.post(f"/admin/users/{superadmin.id}/sessions/revoke").status_code == 404
    admin = _sign_in(app, superadmin.email)
    response = admin.post(f"/admin/users/{owner.id}/sessions/revoke", data={"next": f"/admin/tenants/{tenant.id}"})
    assert response.status_code == 302 and response.headers["Location"] == f"/admin/tenants/{tenant.id}"
    assert not _signed_in(browser) and not _signed_in(stolen)
    assert _signed_in(admin)
    with short_session(app) as session:
        entry = session.scalar(select(AuditLog).where(AuditLog.action == "user.sessions_revoked"))
        assert entry.object_id == str(owner.id) and entry.actor_user_id == superadmin.id
        assert session.get(User, owner.id).active  # revoked sessions, not a disabled account
    assert admin.post("/admin/users/999999/sessions/revoke").status_code == 404
    _sign_in(app, owner.email)  # the owner simply signs in again

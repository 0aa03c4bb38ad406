"""Sign-in: hashed passwords, rate limits, CSRF, safe redirects, cookie flags."""
import re

import pytest

from billing.models import Role, User
from portal import create_app
from portal.extensions import db
from tests.helpers.data import PASSWORD, make_user


def test_login_page_renders(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b'name="email"' in response.data and b'name="password"' in response.data


def test_owner_signs_in_and_lands_on_the_dashboard(client, auth, owner, tenant):
    response = auth.login(owner.email)
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"
    page = client.get("/dashboard")
    assert page.status_code == 200 and b"Acme Analytics" in page.data


def test_password_is_stored_hashed(owner):
    assert PASSWORD not in owner.password_hash
    assert owner.password_hash.startswith("scrypt:")


def test_email_is_case_insensitive(auth, owner):
    assert auth.login("OWNER@Acme.Test").status_code == 302


@pytest.mark.parametrize("email,password", [("owner@acme.test", "wrong-password"), ("nobody@acme.test", PASSWORD)])
def test_wrong_credentials_are_refused_with_one_message(client, auth, owner, email, password):
    response = auth.login(email, password)
    assert response.status_code == 401
    assert b"Invalid email or password." in response.data
    assert client.get("/dashboard").status_code == 302


def test_inactive_user_cannot_sign_in(app, auth, owner):
    with app.app_context():
        db.session.get(User, owner.id).active = False
        db.session.commit()
    assert auth.login(owner.email).status_code == 401


def test_logout_needs_a_post_and_signs_out(client, auth, owner):
    auth.login(owner.email)
    assert client.get("/logout").status_code == 405
    assert auth.logout().status_code == 302
    assert client.get("/dashboard").status_code == 302


@pytest.mark.parametrize("target", ["/apps/1", "/dashboard?x=1"])
def test_next_on_this_site_is_followed(client, owner, target):
    response = client.post(f"/login?next={target}", data={"email": owner.email, "password": PASSWORD})
    assert response.headers["Location"] == target


@pytest.mark.parametrize("target", ["https://evil.test/", "//evil.test/", "/\\evil.test", "http:evil.test",
                                    "javascript:alert(1)"])
def test_off_site_next_is_refused(client, owner, target):
    response = client.post("/login", query_string={"next": target},
                           data={"email": owner.email, "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"


def test_failed_attempts_per_account_are_rate_limited(client, auth, owner):
    for _ in range(5):
        assert auth.login(owner.email, "wrong-password").status_code == 401
    # Even the right password is refused now from this address: the guesser is throttled, not the guess.
    refused = auth.login(owner.email)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60


def _login_from(app, address: str, email: str, password: str) -> int:
    return app.test_client().post("/login", data={"email": email, "password": password},
                                  environ_base={"REMOTE_ADDR": address}).status_code


def test_a_stranger_guessing_does_not_lock_the_owner_out(app, owner):
    attacker, owner_home = "203.0.113.66", "198.51.100.7"
    statuses = [_login_from(app, attacker, owner.email, f"guess-{i}") for i in range(7)]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]
    assert _login_from(app, owner_home, owner.email, PASSWORD) == 302
    # The owner's own typos count for the owner's address only.
    assert _login_from(app, owner_home, owner.email, "typo") == 401
    assert _login_from(app, attacker, owner.email, PASSWORD) == 429


def test_successful_sign_ins_do_not_count_against_the_account(app, owner):
    for _ in range(7):
        test_client = app.test_client()
        assert test_client.post("/login", data={"email": owner.email, "password": PASSWORD}).status_code == 302


def test_attempts_per_address_are_rate_limited_across_accounts(auth, app):
    statuses = [auth.login(f"user{i}@acme.test", "wrong-password").status_code for i in range(21)]
    assert statuses[:20] == [401] * 20
    assert statuses[20] == 429


def test_missing_csrf_token_is_refused(app_config, owner):
    app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    client = app.test_client()
    response = client.post("/login", data={"email": owner.email, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/dashboard").status_code == 302  # not signed in

    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"email": owner.email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302


def test_session_cookie_is_httponly_and_samesite(client, auth, owner):
    response = auth.login(owner.email)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # development and tests run on plain http://localhost


def test_session_cookie_is_secure_outside_development(app_config, owner):
    app = create_app({**app_config, "SESSION_COOKIE_SECURE": True})
    response = app.test_client().post("/login", data={"email": owner.email, "password": PASSWORD})
    assert "Secure" in response.headers["Set-Cookie"]


def test_superadmin_role(superadmin):
    assert superadmin.role == Role.SUPERADMIN and superadmin.is_superadmin


def test_security_headers(client):
    response = client.get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_emails_are_stored_lowercase(app):
    assert make_user(app, "MiXeD@Case.test").email == "mixed@case.test"


def test_behind_a_trusted_proxy_the_address_limit_is_per_client(app, app_config):
    proxied = create_app({**app_config, "TRUSTED_PROXIES": 1})  # same database and Redis as ``app``
    client = proxied.test_client()

    def attempt(address: str, i: int) -> int:
        return client.post("/login", data={"email": f"u{i}@acme.test", "password": "wrong"},
                           headers={"X-Forwarded-For": address}).status_code

    statuses = [attempt("203.0.113.1", i) for i in range(21)]
    assert statuses[:20] == [401] * 20 and statuses[20] == 429
    assert attempt("203.0.113.2", 99) == 401  # another client behind the same proxy is not throttled


def test_sign_in_works_while_the_rate_limit_store_is_down(app_config, owner, tmp_path, caplog):
    from scripts import services

    redis = services.start_redis(tmp_path / "limiter-redis")
    try:
        portal = create_app({**app_config, "RATELIMIT_STORAGE_URI": redis.url})
        client = portal.test_client()
        assert client.post("/login", data={"email": owner.email, "password": "wrong-password"}).status_code == 401
        redis.stop()  # a real outage: the server is gone, connections are refused
        assert client.post("/login", data={"email": owner.email, "password": "wrong-password"}).status_code == 401
        signed_in = client.post("/login", data={"email": owner.email, "password": PASSWORD})
        assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/dashboard"
        assert client.get("/dashboard").status_code == 200
        assert any("storage" in record.getMessage().lower() for record in caplog.records)
    finally:
        redis.stop()

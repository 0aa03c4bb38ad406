"""Test clients of the portal: in English, signed in, and a browser's answer to the sandbox's hosted Checkout."""
from __future__ import annotations

from urllib.parse import urlsplit

import requests

from billing.models import User
from tests.helpers.data import PASSWORD

VISA = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0002"
MASTERCARD = "5555 5555 5555 4444"


def english_client(app):
    """A test client whose browser asks for English, so assertions read in the source language."""
    test_client = app.test_client()
    test_client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return test_client


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, email: str, password: str = PASSWORD):
        return self._client.post("/login", data={"email": email, "password": password})

    def logout(self):
        return self._client.post("/logout")


def signed_in_client(app, user: User):
    test_client = english_client(app)
    response = AuthActions(test_client).login(user.email)
    assert response.status_code == 302, "the test user could not sign in"
    return test_client


def pay_hosted_checkout(session_url: str, card_number: str = VISA, follow: bool = False):
    """Submit the sandbox's hosted Checkout form as a browser would; returns the response."""
    form = {"email": "owner@acme.test", "cardNumber": card_number, "cardExpiry": "12 / 34", "cardCvc": "123",
            "billingName": "Ana Owner"}
    return requests.post(session_url, data=form, allow_redirects=follow, timeout=15)


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def open_checkout(client, app_id: int, plan: str = "pro", attempt: str = "attempt-0001") -> str:
    """Press "Subscribe" on the billing page; returns the hosted Checkout URL the portal redirected to."""
    response = client.post(f"/apps/{app_id}/billing/checkout", data={"plan": plan, "attempt": attempt})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"]


def subscribe(client, app_id: int, plan: str = "pro", card: str = VISA, attempt: str = "attempt-0001"):
    """Check out, pay on the hosted page and come back to /billing/success; returns that answer."""
    paid = pay_hosted_checkout(open_checkout(client, app_id, plan, attempt), card_number=card)
    assert paid.status_code in (302, 303), paid.text
    return client.get(local_path(paid.headers["Location"]))

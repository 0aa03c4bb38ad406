"""One contract suite, two targets: the local sandbox (default) and Stripe test mode.

Every test in this folder takes the ``target`` fixture. Against the sandbox it runs
in every test run; the same tests run against Stripe test mode with
``pytest -m real_gateway`` when ``STRIPE_KERNEL_SECRET_KEY=sk_test_...`` is set, and
are skipped with the reason otherwise.
"""
from __future__ import annotations

import os

import pytest

from tests.helpers.contract import SandboxTarget, StripeTestModeTarget


@pytest.fixture(params=["sandbox", pytest.param("stripe", marks=pytest.mark.real_gateway)])
def target(request):
    if request.param == "sandbox":
        server = request.getfixturevalue("sandbox")
        return SandboxTarget(server)
    key = os.environ.get("STRIPE_KERNEL_SECRET_KEY", "")
    if not key.startswith("sk_test_"):
        pytest.skip("real_gateway: set STRIPE_KERNEL_SECRET_KEY=sk_test_... to run against Stripe test mode")
    return StripeTestModeTarget(key)

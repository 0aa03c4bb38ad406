"""What the job tests share: a tenant on Pro in the sandbox whose renewal failed (helpers in tests/helpers/dunning.py)."""
from __future__ import annotations

import pytest

from tests.helpers.dunning import Dunning, fail_renewal, subscribe_directly


@pytest.fixture
def dunning(billing_app, tenant) -> Dunning:
    subscribe_directly(billing_app, tenant.id)
    return fail_renewal(billing_app, tenant.id)

"""The kill-switch tests borrow the dunning tenant and the gateway API's clients from their folders."""
from __future__ import annotations

from tests.gateway_api.conftest import api, gw_app  # noqa: F401 (fixtures)
from tests.jobs.conftest import dunning  # noqa: F401 (the fixture)

"""Telemetry fixtures: the end-to-end sandbox and bot fixtures, and a local RudderStack sink."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import bot, e2e_database, sandbox, start_bot  # noqa: F401  (re-exported fixtures)
from tests.telemetry.sink import Sink


@pytest.fixture
async def sink():
    """A data plane on loopback that answers 200 to every batch."""
    server = Sink()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def hanging_sink():
    """A data plane that accepts connections but never answers (until released at teardown)."""
    server = Sink(mode="hang")
    await server.start()
    yield server
    await server.stop()

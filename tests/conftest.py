"""Fixtures shared by every test area."""

import os
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_stray_settings(monkeypatch):
    """Tests control the bot's configuration themselves; nothing leaks in from the shell or mmpy_bot's
    environment overrides."""
    for key in list(os.environ):
        if key.startswith("CC_") or key in ("MATTERMOST_URL", "MATTERMOST_PORT", "BOT_TOKEN", "MATTERMOST_API_PATH"):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture
async def http():
    """One plain HTTP client session for a test (tests that need other limits define their own)."""
    async with aiohttp.ClientSession() as session:
        yield session

"""Fixtures shared by every test area."""

import os
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_stray_settings(monkeypatch):
    """Tests control the bot's own settings (``CC_*``) themselves; nothing leaks in from the shell."""
    for key in list(os.environ):
        if key.startswith("CC_"):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture
async def http():
    """One plain HTTP client session for a test (tests that need other limits define their own)."""
    async with aiohttp.ClientSession() as session:
        yield session

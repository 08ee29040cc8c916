"""End-to-end fixtures: the sandbox Mattermost and the real bot on loopback ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import CommandCenter
from sandbox import Sandbox, SandboxConfig
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEMO_SEED = ROOT / "sandbox" / "seeds" / "demo.yaml"


def bot_settings(sandbox: Sandbox, data_dir: Path, **overrides) -> Settings:
    values = dict(mattermost_url=sandbox.url, bot_token=sandbox.token_of("incident"), listen_host="127.0.0.1",
                  listen_port=0, data_dir=data_dir, log_level="INFO", request_timeout=5.0)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def sandbox():
    async with Sandbox(DEMO_SEED, config=SandboxConfig(record=True)) as sb:
        yield sb


@pytest.fixture
async def start_bot(sandbox, tmp_path):
    """Start a bot (more than once if a test restarts it); every bot is stopped at the end."""
    started: list[CommandCenter] = []

    async def start(**overrides) -> CommandCenter:
        app = CommandCenter(bot_settings(sandbox, tmp_path / "data", **overrides))
        await app.start()
        started.append(app)
        await app.wait_connected()
        return app

    yield start
    for app in reversed(started):
        await app.stop()


@pytest.fixture
async def bot(start_bot):
    return await start_bot()

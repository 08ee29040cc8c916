"""Supported Mattermost releases: the bot warns at start-up on an older server and still works."""

from __future__ import annotations

import logging

import pytest

from bot import CommandCenter
from sandbox import Sandbox, SandboxConfig
from version import MIN_MATTERMOST, TESTED_MATTERMOST

from .conftest import DEMO_SEED, bot_settings


def version_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "command_center" and r.levelno == logging.WARNING and "Mattermost" in r.getMessage()]


async def start_bot(sandbox: Sandbox, tmp_path, caplog) -> CommandCenter:
    caplog.set_level(logging.INFO, logger="command_center")
    app = CommandCenter(bot_settings(sandbox, tmp_path / "data"))
    await app.start()
    await app.wait_connected()
    return app


async def help_works(sandbox: Sandbox) -> bool:
    result = await sandbox.user("alice").command("town-square", "/incident help")
    return result.status == 200 and result.error is None and "/incident start" in result.ephemeral[0]


@pytest.mark.parametrize("old", ["10.11.23", "9.11.0"])
async def test_older_server_gets_one_warning_naming_the_minimum_and_the_bot_still_works(old, tmp_path, caplog):
    async with Sandbox(DEMO_SEED, config=SandboxConfig(server_version=old)) as sandbox:
        app = await start_bot(sandbox, tmp_path, caplog)
        try:
            assert app.client.server_version == old
            [warning] = version_warnings(caplog)
            assert old in warning and MIN_MATTERMOST in warning and "\n" not in warning
            assert await help_works(sandbox)
        finally:
            await app.stop()


@pytest.mark.parametrize("version", [TESTED_MATTERMOST, "11.7.0", "11.11.3", "12.1.0"])
async def test_supported_server_gets_no_warning(version, tmp_path, caplog):
    async with Sandbox(DEMO_SEED, config=SandboxConfig(server_version=version)) as sandbox:
        app = await start_bot(sandbox, tmp_path, caplog)
        try:
            assert app.client.server_version == version
            assert version_warnings(caplog) == []
            assert await help_works(sandbox)
        finally:
            await app.stop()

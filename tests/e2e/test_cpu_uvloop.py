"""The bot as an operator runs it with CC_EVENT_LOOP=uvloop (issue 15, CPU per start): a start, a click
on its card, and a clean stop on SIGTERM, all as on asyncio's loop."""

from __future__ import annotations

import asyncio
import os
import sys

from tests.e2e.test_start_recovery import BOT_TOKEN_USER, ROOT, BotProcess, create_playbook


class UvloopBot(BotProcess):
    """``python bot.py`` with CC_EVENT_LOOP=uvloop."""

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
        env.update({"CC_MATTERMOST_URL": self.sandbox.url, "CC_BOT_TOKEN": self.sandbox.token_of(BOT_TOKEN_USER),
                    "CC_LISTEN_HOST": "127.0.0.1", "CC_LISTEN_PORT": str(self.port),
                    "CC_DATA_DIR": str(self.data_dir), "CC_LOG_LEVEL": "INFO", "CC_EVENT_LOOP": "uvloop"})
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(sys.executable, str(ROOT / "bot.py"), env=env,
                                                                cwd=str(self.data_dir.parent), stdout=log, stderr=log)
        team_id = self.sandbox.team("acme")["id"]
        url = f"http://127.0.0.1:{self.port}/mattermost/command"
        await self.sandbox.wait_for(lambda: any(c["url"] == url for c in self.sandbox.commands(team_id)), timeout=30)


async def test_a_start_and_a_click_on_uvloop(sandbox, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    bot = UvloopBot(sandbox, data_dir, tmp_path / "bot.log")
    await bot.start()
    try:
        await create_playbook(sandbox)
        alice = sandbox.user("alice")
        result = await alice.command("town-square", "/incident start Disk full")
        assert result.dialog is not None
        playbook_id = result.dialog["dialog"]["elements"][0]["options"][0]["value"]
        outcome = await alice.submit_dialog({"playbook": playbook_id, "name": "Disk full", "description": ""})
        assert outcome.closed, (outcome.errors, outcome.error)
        channel = await sandbox.wait_for(lambda: sandbox.channel("acme", "disk-full"), timeout=30)
        (card,) = await sandbox.wait_for(lambda: sandbox.pinned(channel["id"]), timeout=30)
        step = card["props"]["attachments"][2]
        assert step["text"].startswith("⬜")
        clicked = await alice.click(card["id"], step["actions"][0]["id"])
        assert clicked.status == 200 and not clicked.ephemeral, (clicked.error, clicked.ephemeral)

        def checked():
            now = next(p for p in sandbox.pinned(channel["id"]) if p["id"] == card["id"])
            return now["props"]["attachments"][2]["text"].startswith("✅")

        await sandbox.wait_for(checked, timeout=30)
    finally:
        await bot.stop()
    assert bot.process is not None and bot.process.returncode == 0, "SIGTERM stops it cleanly"
    log = (tmp_path / "bot.log").read_text()
    assert "Traceback" not in log and "shutting down" in log
    assert "running on uvloop.Loop" in log

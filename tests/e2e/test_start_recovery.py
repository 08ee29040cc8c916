"""The start flow survives SIGKILL at every step: the restarted bot completes the incident, with
exactly one channel, one opening post and one pinned card, and tells the creator."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from storage import open_store

ROOT = Path(__file__).resolve().parents[2]
BOT_TOKEN_USER = "incident"

# (description, method, path pattern, hold after the request was handled?, matching requests to let pass)
CRASH_POINTS = [
    ("before the channel is created", "POST", r"^/api/v4/channels$", False, 0),
    ("after the channel is created", "POST", r"^/api/v4/channels$", True, 0),
    ("after the creator is added", "POST", r"^/api/v4/channels/[a-z0-9]{26}/members$", True, 0),
    ("before the opening post", "POST", r"^/api/v4/posts$", False, 0),
    ("after the opening post", "POST", r"^/api/v4/posts$", True, 0),
    ("after the card is posted", "POST", r"^/api/v4/posts$", True, 1),
    ("after the card is pinned", "POST", r"^/api/v4/posts/[a-z0-9]{26}/pin$", True, 0),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BotProcess:
    """``python bot.py`` against the sandbox, as an operator runs it."""

    def __init__(self, sandbox, data_dir: Path, log: Path, database_url: str | None = None) -> None:
        self.sandbox = sandbox
        self.database_url = database_url  # None: the default SQLite file in data_dir
        self.data_dir = data_dir
        self.log = log
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
        env.update({"CC_MATTERMOST_URL": self.sandbox.url, "CC_BOT_TOKEN": self.sandbox.token_of(BOT_TOKEN_USER),
                    "CC_LISTEN_HOST": "127.0.0.1", "CC_LISTEN_PORT": str(self.port),
                    "CC_DATA_DIR": str(self.data_dir), "CC_LOG_LEVEL": "INFO"})
        if self.database_url is not None:
            env["CC_DATABASE_URL"] = self.database_url
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(sys.executable, str(ROOT / "bot.py"), env=env,
                                                                cwd=str(self.data_dir.parent), stdout=log, stderr=log)
        team_id = self.sandbox.team("acme")["id"]
        url = f"http://127.0.0.1:{self.port}/mattermost/command"
        await self.sandbox.wait_for(lambda: any(c["url"] == url for c in self.sandbox.commands(team_id)), timeout=30)

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 30)


async def create_playbook(sandbox) -> None:
    alice = sandbox.user("alice")
    result = await alice.command("town-square", '/incident playbook create incident-response "Response"')
    outcome = await alice.submit_dialog({"template": "incident-response", "title": "Response",
                                         "description": None, "channel": None})
    assert result.dialog is not None and outcome.closed


async def start_killed_at(sandbox, bot: BotProcess, method: str, path: str, *, after: bool, skip: int = 0):
    """alice starts "Disk full" and submits the dialog; ``bot`` is killed when its request ``method path``
    is held (``after``: once the sandbox has handled it; ``skip``: matching requests let through first).
    Returns what alice saw of her submission."""
    alice = sandbox.user("alice")
    result = await alice.command("town-square", "/incident start Disk full")
    assert result.dialog is not None
    playbook_id = result.dialog["dialog"]["elements"][0]["options"][0]["value"]
    gate = sandbox.gates.hold(method, path, after=after, skip=skip, token=sandbox.token_of(BOT_TOKEN_USER))
    submission = asyncio.create_task(alice.submit_dialog({"playbook": playbook_id, "name": "Disk full",
                                                          "description": "The database disk is full"}))
    await asyncio.wait_for(gate.reached.wait(), 30)
    await bot.kill()
    outcome = await submission
    gate.release()
    return outcome


@pytest.mark.parametrize(("where", "method", "path", "after", "skip"), CRASH_POINTS,
                         ids=[point[0].replace(" ", "-") for point in CRASH_POINTS])
async def test_sigkill_during_start_is_repaired_on_restart(sandbox, tmp_path, where, method, path, after, skip,
                                                          e2e_database):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    first = BotProcess(sandbox, data_dir, tmp_path / "bot.log", e2e_database)
    await first.start()
    second = None
    try:
        await create_playbook(sandbox)
        alice = sandbox.user("alice")
        outcome = await start_killed_at(sandbox, first, method, path, after=after, skip=skip)
        assert not outcome.closed  # the user saw the submission fail

        second = BotProcess(sandbox, data_dir, tmp_path / "bot.log", e2e_database)
        dm = await alice.dm_channel("incident")
        await second.start()
        told = await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm) if "restarted while starting" in p["message"]],
                                      timeout=30)
        assert len(told) == 1 and "~disk-full" in told[0]["message"]
    finally:
        for bot in (first, second):
            if bot is not None:
                await bot.stop()
    assert "Traceback" not in (tmp_path / "bot.log").read_text()

    team_id = sandbox.team("acme")["id"]
    bot_id = sandbox.user_id(BOT_TOKEN_USER)
    made = [c for c in sandbox.world.channels.values()
            if c["team_id"] == team_id and c["creator_id"] == bot_id and not c["delete_at"]]
    assert [c["name"] for c in made] == ["disk-full"], "exactly one live incident channel"
    channel = made[0]
    store = await open_store(e2e_database or f"sqlite:///{data_dir / 'command-center.db'}")
    try:
        page = await store.list_incidents(team_id, is_admin=True)
        assert len(page.items) == 1
        incident = page.items[0]
        assert incident.channel_id == channel["id"] and incident.name == "Disk full"
        assert incident.card_post_id is not None
        assert await store.settings_with_prefix("start:") == {}
        # The start, and its creator's join recorded with it: once, however far the first attempt got.
        assert [e.kind.value for e in await store.timeline(incident.id)] == ["created", "member_joined"]
    finally:
        await store.close()
    posts = [p for p in sandbox.posts(channel["id"]) if p["user_id"] == bot_id and not p["type"].startswith("system_")]
    openings = [p for p in posts if p["message"].startswith("This incident has been started by @alice")]
    cards = [p for p in posts if p["props"].get("command_center_card")]
    assert len(openings) == 1 and len(cards) == 1
    assert [p["id"] for p in sandbox.pinned(channel["id"])] == [incident.card_post_id] == [cards[0]["id"]]
    assert sandbox.user_id("alice") in sandbox.channel_members(channel["id"])


async def test_a_card_posted_for_an_incident_lost_with_its_unsynced_commit_is_drawn_again(sandbox, tmp_path):
    """The incident's commit does not wait for the disk (Store.commit_without_sync): a power loss right
    after the card was posted can lose it while the journal, committed synchronously before, survives.
    The restarted bot then makes the incident again — with new stage and step ids — and must not keep a
    card whose buttons name the lost incident's steps: the card found in the channel is drawn again."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = f"sqlite:///{data_dir / 'command-center.db'}"
    first = BotProcess(sandbox, data_dir, tmp_path / "bot.log")
    await first.start()
    second = None
    try:
        await create_playbook(sandbox)
        alice = sandbox.user("alice")
        await start_killed_at(sandbox, first, "POST", r"^/api/v4/posts/[a-z0-9]{26}/pin$", after=True)
        store = await open_store(database)
        try:  # what the power loss took: the incident's unsynced commit (its row, timeline, summary)
            (lost,) = (await store.list_incidents(sandbox.team("acme")["id"], is_admin=True)).items
            await store.delete_incident(lost.id)
            assert list(await store.settings_with_prefix("start:")) == [f"start:{lost.id}"]  # the journal survived
        finally:
            await store.close()
        second = BotProcess(sandbox, data_dir, tmp_path / "bot.log")
        dm = await alice.dm_channel("incident")
        await second.start()
        await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm) if "restarted while starting" in p["message"]],
                               timeout=30)
    finally:
        for bot in (first, second):
            if bot is not None:
                await bot.stop()
    assert "Traceback" not in (tmp_path / "bot.log").read_text()
    store = await open_store(database)
    try:
        (incident,) = (await store.list_incidents(sandbox.team("acme")["id"], is_admin=True)).items
        assert incident.id == lost.id and await store.settings_with_prefix("start:") == {}
        steps = {step.id for stage in incident.stages for step in stage.steps}
        assert steps.isdisjoint({step.id for stage in lost.stages for step in stage.steps})
    finally:
        await store.close()
    bot_id = sandbox.user_id(BOT_TOKEN_USER)
    cards = [p for p in sandbox.posts(incident.channel_id) if p["user_id"] == bot_id
             and p["props"].get("command_center_card")]
    assert [c["id"] for c in cards] == [incident.card_post_id] == [p["id"] for p in sandbox.pinned(incident.channel_id)]
    shown = {action["id"] for attachment in cards[0]["props"]["attachments"] for action in attachment.get("actions", [])
             if action["id"].startswith("check")}
    active = incident.stages[incident.active_stage]
    assert shown == {f"check{step.id}" for step in active.steps}  # the stored incident's steps, not the lost one's

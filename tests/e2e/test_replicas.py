"""Two bot replicas (``python bot.py`` processes) on one database — a shared SQLite file, and a
PostgreSQL database in the suite's PostgreSQL run — behind a
loopback proxy for Mattermost's callbacks (bench/proxy.py), with one sandbox (issue 20, docs/replicas.md).

Any replica answers any request: a dialog opened by A is submitted to B, an incident started through
A is worked through B. The leader is SIGKILLed in the middle of a start (its opening post made, the
answer never heard): the other replica takes the lease within the documented bound, catches the
WebSocket up from the checkpoint in the database (a direct message sent while nobody led is answered
once) and completes the start. Then the new leader is SIGKILLed in the middle of a reminder (sent,
not yet completed: ``CC_TEST_KILL_AT=after_send``): the restarted first replica takes over and the
reminder is in each place once. At the end: one channel, one opening post and one pinned card per
incident, showing what the store holds; no post made twice; no start left half-done.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from bench.proxy import ReplicaProxy
from bench.soak import _card_digest
from gateway.cards import CardContext, incident_card
from gateway.signing import Signer
from services.reminders import REMINDER_KIND, REMINDER_PROP
from services.replica import takeover_bound_ms
from storage import open_store
from storage.jobs import JobState
from tests.e2e.test_start_recovery import BOT_TOKEN_USER, ROOT, free_port

LEASE_MS = 1500
SECRET = "replicas-share-this-signing-secret-0123456789abcdef"
#: What a loaded 2-core machine may add to the takeover bound (process scheduling, the first round).
SLACK_MS = 4000


class Replica:
    """One ``python bot.py`` replica: its own port and data directory, the shared database and secret."""

    def __init__(self, sandbox, name: str, root: Path, database_url: str, public_url: str, **extra: str) -> None:
        self.sandbox, self.name = sandbox, name
        self.data_dir = root / name
        self.data_dir.mkdir(exist_ok=True)
        self.log = root / f"{name}.log"
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
        self.env.update({"CC_MATTERMOST_URL": sandbox.url, "CC_BOT_TOKEN": sandbox.token_of(BOT_TOKEN_USER),
                         "CC_LISTEN_HOST": "127.0.0.1", "CC_LISTEN_PORT": str(self.port),
                         "CC_PUBLIC_URL": public_url, "CC_DATABASE_URL": database_url,
                         "CC_SIGNING_SECRET": SECRET, "CC_DATA_DIR": str(self.data_dir),
                         "CC_REPLICA_ID": name, "CC_LEASE_MS": str(LEASE_MS), "CC_LOG_LEVEL": "INFO",
                         "CC_TELEMETRY_ENABLED": "false", **extra})
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(sys.executable, str(ROOT / "bot.py"), env=self.env,
                                                                cwd=str(self.data_dir), stdout=log, stderr=log)
        await until(self.sandbox, lambda: self.health_is(ok=True), timeout=60, what=f"{self.name} serving")

    async def health(self) -> tuple[int, dict]:
        try:
            async with aiohttp.ClientSession() as http, http.get(self.url + "/healthz") as response:
                return response.status, await response.json()
        except aiohttp.ClientError:
            return 0, {}

    async def health_is(self, *, ok: bool | None = None, leader: bool | None = None) -> bool:
        status, body = await self.health()
        if status == 0:
            return False
        return (ok is None or (status == 200) == ok) and (leader is None or body.get("leader") is leader)

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 30)


async def until(sandbox, predicate, *, timeout: float, what: str):
    """Ask ``predicate`` (maybe async) after every sandbox change and at least every 0.1 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await sandbox.wait_for(predicate, timeout=0.1)
        except TimeoutError:
            if loop.time() > deadline:
                raise AssertionError(f"{what}: not within {timeout} s") from None


def bot_posts(sandbox, channel_id: str, text: str) -> list[dict]:
    bot_id = sandbox.user_id(BOT_TOKEN_USER)
    return [p for p in sandbox.posts(channel_id) if p["user_id"] == bot_id and text in p["message"]]


def first_button(post: dict, label: str) -> str:
    for attachment in post["props"].get("attachments", []):
        for action in attachment.get("actions", []):
            if action["name"] == label:
                return action["id"]
    raise AssertionError(f"no {label!r} button on the card")


async def stored(database_url: str, name: str):
    store = await open_store(database_url)
    try:
        for team_id in await _teams(store):
            for incident in (await store.list_incidents(team_id, is_admin=True, per_page=100)).items:
                if incident.name == name:
                    return incident
        return None
    finally:
        await store.close()


async def _teams(store) -> set[str]:
    return {TEAM["id"]}  # every incident of the test is in acme


TEAM: dict = {}


async def start_through(proxy, sandbox, *, command_to: int, submit_to: int, name: str):
    """Alice types the start command (answered by replica ``command_to``) and submits its dialog
    (answered by ``submit_to``)."""
    alice = sandbox.user("alice")
    proxy.pin(command_to)
    result = await alice.command("town-square", f"/incident start {name}")
    assert result.dialog is not None, result
    playbook_id = result.dialog["dialog"]["elements"][0]["options"][0]["value"]
    proxy.pin(submit_to)
    return alice, playbook_id


async def test_two_replicas_share_the_work_and_survive_sigkill_of_the_leader(sandbox, tmp_path, e2e_database):
    TEAM.update(sandbox.team("acme"))
    # One shared SQLite file, or one PostgreSQL database (the PostgreSQL run of the e2e suite).
    database_url = e2e_database or f"sqlite:///{tmp_path / 'shared.db'}"
    proxy = ReplicaProxy(["http://127.0.0.1:1", "http://127.0.0.1:1"])
    public_url = await proxy.start()
    a = Replica(sandbox, "a", tmp_path, database_url, public_url)
    b = Replica(sandbox, "b", tmp_path, database_url, public_url, CC_TEST_HOOKS="1", CC_TEST_KILL_AT="after_send",
                CC_TEST_SCHEDULER_LEASE_MS=str(LEASE_MS))
    proxy.targets = [a.url, b.url]
    replicas = [a, b]
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    try:
        await a.start()
        await until(sandbox, lambda: a.health_is(leader=True), timeout=30, what="a leading")
        await b.start()
        status, body = await b.health()
        assert status == 200 and body["leader"] is False and body["websocket"] == "standby", body
        assert body["store"] == "ok" and body["mattermost"] == "ok"

        # A dialog opened by A, submitted to B; an incident started through A, worked through B.
        proxy.pin(0)
        result = await alice.command("town-square", '/incident playbook create incident-response "Response"')
        assert result.dialog is not None
        proxy.pin(1)
        outcome = await alice.submit_dialog({"template": "incident-response", "title": "Response",
                                             "description": None, "channel": None})
        assert outcome.closed, outcome
        alice, playbook_id = await start_through(proxy, sandbox, command_to=0, submit_to=0, name="Disk full")
        assert (await alice.submit_dialog({"playbook": playbook_id, "name": "Disk full", "description": ""})).closed
        disk = await stored(database_url, "Disk full")
        assert disk is not None and disk.card_post_id
        proxy.pin(1)
        card = sandbox.world.posts[disk.card_post_id]
        clicked = await alice.click(disk.card_post_id, first_button(card, "Check"))
        assert clicked.status == 200, clicked
        await until(sandbox, lambda: _first_step_done(database_url, "Disk full"), timeout=15, what="the click applied")
        assert proxy.served[0] >= 3 and proxy.served[1] >= 2

        # The WebSocket is A's alone: a direct message is answered once.
        bob_dm = await bob.dm_channel(BOT_TOKEN_USER)
        await bob.post(bob_dm, "help")
        await until(sandbox, lambda: bot_posts(sandbox, bob_dm, "Send me these words"), timeout=15, what="help")

        # SIGKILL the leader in the middle of a start: the opening post is made, A never hears it.
        alice, playbook_id = await start_through(proxy, sandbox, command_to=0, submit_to=0, name="Payments down")
        gate = sandbox.gates.hold("POST", r"^/api/v4/posts$", after=True, token=sandbox.token_of(BOT_TOKEN_USER))
        submission = asyncio.create_task(alice.submit_dialog({"playbook": playbook_id, "name": "Payments down",
                                                              "description": "card payments fail"}))
        await asyncio.wait_for(gate.reached.wait(), 30)
        await a.kill()
        killed_at = time.monotonic()
        gate.release()
        assert not (await submission).closed  # alice saw it fail
        await bob.post(bob_dm, "help")  # while nobody leads: caught up by the next leader
        await until(sandbox, lambda: b.health_is(ok=True, leader=True), timeout=30, what="b taking over")
        took_ms = (time.monotonic() - killed_at) * 1000
        assert took_ms <= takeover_bound_ms(LEASE_MS) + SLACK_MS, took_ms
        await until(sandbox, lambda: len(bot_posts(sandbox, bob_dm, "Send me these words")) == 2, timeout=30,
                    what="the direct message sent while nobody led answered")
        alice_dm = await alice.dm_channel(BOT_TOKEN_USER)
        told = await until(sandbox, lambda: bot_posts(sandbox, alice_dm, "restarted while starting"), timeout=30,
                           what="b completing a's start")
        assert len(told) == 1 and "~payments-down" in told[0]["message"]

        # A comes back as a follower; then B (now leader) is SIGKILLed in the middle of a reminder.
        a = Replica(sandbox, "a", tmp_path, database_url, public_url)
        replicas.append(a)
        proxy.targets[0] = a.url
        await a.start()
        assert await a.health_is(ok=True, leader=False)
        await make_reminder_due(database_url, disk.id)
        proxy.pin(1)
        result = await alice.command(sandbox.channel_by_id(disk.channel_id)["name"], "/incident check 1.2")
        assert result.status == 200, result
        assert b.process is not None
        assert await asyncio.wait_for(b.process.wait(), 60) == -9  # it sent the reminder, then died
        killed_at = time.monotonic()
        await until(sandbox, lambda: a.health_is(ok=True, leader=True), timeout=30, what="a taking over again")
        assert (time.monotonic() - killed_at) * 1000 <= takeover_bound_ms(LEASE_MS) + SLACK_MS
        job = await until(sandbox, lambda: _reminder_done(database_url, disk.id), timeout=60, what="the reminder done")
        job_id = job.id
        proxy.pin(None)
    finally:
        for replica in replicas:
            await replica.stop()
        await proxy.stop()

    # The reminder is in each place once; nothing is duplicated or lost; each card shows the store.
    disk = await stored(database_url, "Disk full")
    payments = await stored(database_url, "Payments down")
    assert disk is not None and payments is not None
    dm = await alice.dm_channel(BOT_TOKEN_USER)
    for channel in (disk.channel_id, dm):
        reminders = [p for p in sandbox.posts(channel) if (p.get("props") or {}).get(REMINDER_PROP) == job_id]
        assert len(reminders) == 1, (channel, reminders)
    assert [s.done for s in disk.stages[0].steps[:2]] == [True, True]
    bot_id = sandbox.user_id(BOT_TOKEN_USER)
    signer = Signer(SECRET)
    names = {u["id"]: u["username"] for u in sandbox.world.users.values()}
    for incident in (disk, payments):
        mine = [p for p in sandbox.posts(incident.channel_id) if p["user_id"] == bot_id]
        cards = [p for p in mine if (p.get("props") or {}).get("command_center_card") == incident.id]
        openings = [p for p in mine if p["message"].startswith("This incident has been started by")]
        assert len(cards) == 1 and len(openings) == 1, incident.name
        assert cards[0]["id"] == incident.card_post_id and cards[0]["is_pinned"]
        expected = incident_card(incident, CardContext(usernames=names, signer=signer, action_url="", now_ms=0))
        assert _card_digest(cards[0]) == _card_digest(expected), incident.name
    made = [c for c in sandbox.world.channels.values()
            if c["creator_id"] == bot_id and c["type"] in ("O", "P") and not c["delete_at"]]
    assert sorted(c["name"] for c in made) == ["disk-full", "payments-down"]
    pending = Counter(p["pending_post_id"] for p in sandbox.world.posts.values()
                      if p["user_id"] == bot_id and p["pending_post_id"])
    assert not [key for key, n in pending.items() if n > 1]
    assert len(bot_posts(sandbox, await bob.dm_channel(BOT_TOKEN_USER), "Send me these words")) == 2
    store = await open_store(database_url)
    try:
        assert await store.settings_with_prefix("start:") == {}
        assert await store.settings_with_prefix("start-channel:") == {}
    finally:
        await store.close()
    for replica in ("a", "b"):
        assert "Traceback" not in (tmp_path / f"{replica}.log").read_text(), replica


async def _first_step_done(database_url: str, name: str) -> bool:
    incident = await stored(database_url, name)
    return bool(incident and incident.stages[0].steps[0].done)


async def make_reminder_due(database_url: str, incident_id: str) -> None:
    """The incident's status update is due now (as if its interval ran out); the next change anyone
    makes to it schedules the reminder (services/reminders.py)."""
    store = await open_store(database_url)
    try:
        now = int(time.time() * 1000)
        await store.mutate_incident(incident_id, lambda i: (i.model_copy(update={"next_update_due_at": now}), []))
    finally:
        await store.close()


async def _reminder_done(database_url: str, incident_id: str):
    store = await open_store(database_url)
    try:
        jobs = await store.list_jobs(kind=REMINDER_KIND, key=incident_id, states=(JobState.DONE,))
        return jobs[0] if jobs else None
    finally:
        await store.close()


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


async def test_healthz_says_whether_this_replica_can_serve_and_whether_it_leads(bot):
    async def health() -> tuple[int, dict]:
        url = f"http://127.0.0.1:{bot.inbound.port}/healthz"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            return response.status, await response.json()

    status, body = await health()
    assert status == 200 and body["status"] == "ok"
    assert (body["store"], body["mattermost"], body["websocket"], body["leader"]) == ("ok", "ok", "connected", True)
    assert body["replica"] == bot.replica.id and body["epoch"] >= 1 and 0 < body["expires_in_ms"] <= bot.settings.lease_ms

    async def unreachable(*args, **kwargs):
        raise OSError("the database is gone")

    async def no_answer(timeout: float = 2.0) -> bool:
        return False

    ping, get_lease = bot.client.ping, bot.store.get_lease
    bot.client.ping = no_answer
    status, body = await health()
    assert status == 503 and body["mattermost"] == "unreachable" and body["store"] == "ok"
    bot.client.ping, bot.store.get_lease = ping, unreachable
    status, body = await health()
    assert status == 503 and body["store"] == "unreachable" and body["mattermost"] == "ok"
    bot.store.get_lease = get_lease
    assert (await health())[0] == 200

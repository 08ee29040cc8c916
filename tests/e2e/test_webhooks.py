"""Outgoing webhooks end to end (docs/webhooks.md): the real bot on the sandbox sends lifecycle
events to a loopback aiohttp receiver, which verifies each with the recipe in the docs.

Loopback is internal, so these bots run with ``CC_WEBHOOK_ALLOWED_INTERNAL=127.0.0.1``; one test
shows the refusal without it (at configuration time, and at send time for a target stored anyway).
The receiver signals every request it gets (an asyncio.Event), so nothing here waits on a timer.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
from pathlib import Path

import pytest
from aiohttp import web

from bot import CommandCenter
from domain.models import WebhookTarget
from gateway.webhooks_out import HEADER_IDEMPOTENCY, target_secret
from services.scheduler import Backoff
from services.webhooks import WEBHOOK_KIND
from settings import TeamWebhook
from storage import open_store
from storage.jobs import Job, JobState
from tests.e2e.conftest import bot_settings, make_playbook
from tests.e2e.test_reminder_sigkill import LEASE_MS, ReminderBot, database
from tests.e2e.test_start_recovery import create_playbook
from tests.gateway.test_webhooks_out import documented_verify

TEAM_SECRET = "team-webhook-secret-0123456789"


class Receiver:
    """A loopback webhook receiver: records every POST and wakes whoever waits for one."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self._arrived = asyncio.Event()
        app = web.Application()
        app.router.add_post("/{name}", self.handle)
        self.runner = web.AppRunner(app)

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        await self.runner.cleanup()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.match_info["name"], dict(request.headers), await request.read()))
        self._arrived.set()
        return web.Response(status=204)

    def received(self, name: str | None = None) -> list[dict]:
        return [json.loads(body) for path, _, body in self.requests if name is None or path == name]

    async def wait_for(self, predicate, timeout: float = 20.0) -> None:
        async def until() -> None:
            while not predicate():
                self._arrived.clear()
                await self._arrived.wait()
        await asyncio.wait_for(until(), timeout)


@pytest.fixture
async def receiver():
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


async def _bot(sandbox, data_dir: Path, **overrides) -> CommandCenter:
    app = CommandCenter(bot_settings(sandbox, data_dir, **overrides))
    backoff = overrides.pop("_backoff", None)
    if backoff is not None:
        app.webhook_backoff = backoff
    await app.start()
    await app.wait_connected()
    return app


async def _start_incident(sandbox, playbook_id: str, name: str = "Disk full") -> None:
    alice = sandbox.user("alice")
    opened = await alice.command("town-square", f"/incident start {name}")
    assert opened.dialog is not None, (opened.ephemeral, opened.error)
    outcome = await alice.submit_dialog({"playbook": playbook_id, "name": name, "description": "Disk at 100%"})
    assert outcome.closed, outcome


async def _until(sandbox, predicate, seconds: float = 30.0) -> None:
    """Until ``predicate`` (async, reading the store) holds: asked again on every change the sandbox
    sees and at least every 0.2 s (a job's state may change with nothing changing in Mattermost)."""
    for _ in range(int(seconds / 0.2)):
        try:
            await sandbox.wait_for(predicate, timeout=0.2)
            return
        except TimeoutError:
            continue
    assert await predicate(), f"not true after {seconds} s: {predicate.__name__}"


async def _incident_of(app: CommandCenter, sandbox, name: str):
    page = await app.store.list_incidents(sandbox.team("acme")["id"], is_admin=True, per_page=100)
    return next(i for i in page.items if i.name == name)


async def _jobs(app_or_dir, e2e_database: str | None = None) -> list[Job]:
    if isinstance(app_or_dir, CommandCenter):
        return await app_or_dir.store.list_jobs(kind=WEBHOOK_KIND)
    store = await open_store(database(app_or_dir, e2e_database))
    try:
        return await store.list_jobs(kind=WEBHOOK_KIND)
    finally:
        await store.close()


async def test_lifecycle_events_reach_the_receiver_signed_and_verifiable_with_the_documented_recipe(
        sandbox, tmp_path, receiver):
    app = await _bot(sandbox, tmp_path / "data", webhook_allowed_internal="127.0.0.1")
    try:
        playbook = await make_playbook(app, sandbox)
        target = WebhookTarget(id="w" * 26, url=receiver.url("ops"))
        await app.store.update_playbook(playbook.model_copy(update={"webhooks": (target,)}))
        await _start_incident(sandbox, playbook.id)
        incident = await _incident_of(app, sandbox, "Disk full")
        alice = sandbox.user("alice")
        opened = await alice.command(incident.channel_id, "/incident update")
        assert opened.dialog is not None
        assert (await alice.submit_dialog({"text": "Cleaned /var/log", "next_in": "none"})).closed
        await receiver.wait_for(lambda: len(receiver.requests) >= 2)
        channel = await app.client.get_channel(incident.channel_id)
    finally:
        await app.stop()
    verify = documented_verify()
    secret = target_secret(app.ctx.signer, target.id)
    for _, headers, body in receiver.requests:
        assert verify(secret, headers, body), headers
    created, update = sorted(receiver.received("ops"), key=lambda b: b["occurred_at"])
    assert created["event"] == "incident.created" and update["event"] == "incident.status_update"
    assert created["incident"]["name"] == "Disk full" and created["details"]["description"] == "Disk at 100%"
    assert created["incident"]["commander"]["username"] == "alice"
    assert created["incident"]["url"] == f"{sandbox.url}/acme/channels/{channel.name}"
    assert update["details"]["message"] == "Cleaned /var/log" and update["actor"]["username"] == "alice"
    assert [h[HEADER_IDEMPOTENCY] for _, h, _ in receiver.requests] == [b["id"] for b in receiver.received()]


async def test_a_private_incident_goes_in_full_to_its_playbook_and_redacted_to_the_team(sandbox, tmp_path, receiver):
    team = TeamWebhook(team_id=sandbox.team("acme")["id"], url=receiver.url("team"), secret=TEAM_SECRET)
    app = await _bot(sandbox, tmp_path / "data", webhook_allowed_internal="127.0.0.1", team_webhooks=[team])
    try:
        playbook = await make_playbook(app, sandbox, public=False)
        target = WebhookTarget(id="w" * 26, url=receiver.url("playbook"), events=("created",))
        await app.store.update_playbook(playbook.model_copy(update={"webhooks": (target,)}))
        await _start_incident(sandbox, playbook.id, "Credential leak")
        await receiver.wait_for(lambda: len(receiver.requests) >= 2)
    finally:
        await app.stop()
    verify = documented_verify()
    for name, headers, body in receiver.requests:
        assert verify(TEAM_SECRET if name == "team" else target_secret(app.ctx.signer, target.id), headers, body)
    [full] = receiver.received("playbook")
    [redacted] = receiver.received("team")
    assert full["incident"]["name"] == "Credential leak" and full["incident"]["private"] is True
    assert redacted == {"version": 1, "id": redacted["id"], "event": "incident.created",
                        "occurred_at": full["occurred_at"],
                        "incident": {"id": full["incident"]["id"], "team_id": team.team_id, "status": "ongoing",
                                     "severity": None, "private": True}}


async def test_configuring_an_internal_url_is_refused_by_default_and_a_stored_one_is_never_called(
        sandbox, tmp_path, receiver):
    app = await _bot(sandbox, tmp_path / "data")  # no CC_WEBHOOK_ALLOWED_INTERNAL
    try:
        alice = sandbox.user("alice")
        opened = await alice.command("town-square", "/incident playbook import")
        assert opened.dialog is not None
        yaml_text = ("title: Loopback\nmembers: [alice]\nwebhooks:\n"
                     f"  - url: {receiver.url('x')}\nstages:\n  - title: Triage\n    steps: [Look]\n")
        outcome = await alice.submit_dialog({"yaml": yaml_text})
        assert not outcome.closed
        error = json.dumps(outcome.errors or outcome.error)
        assert "Line 4, webhooks" in error and "internal address" in error and "CC_WEBHOOK_ALLOWED_INTERNAL" in error
        # Stored anyway (e.g. by an older version or by hand): refused when sending, never retried.
        playbook = await make_playbook(app, sandbox)
        target = WebhookTarget(id="w" * 26, url=receiver.url("x"))
        await app.store.update_playbook(playbook.model_copy(update={"webhooks": (target,)}))
        await _start_incident(sandbox, playbook.id)

        async def failed() -> bool:
            jobs = await _jobs(app)
            return bool(jobs) and jobs[0].state is JobState.FAILED
        await _until(sandbox, failed)
        [job] = await _jobs(app)
    finally:
        await app.stop()
    assert job.state is JobState.FAILED and job.attempts == 1
    assert "not retryable" in job.last_error and "internal address" in job.last_error
    assert receiver.requests == []


async def test_an_import_with_an_allowed_url_tells_its_secret_and_deliveries_verify_with_it(sandbox, tmp_path,
                                                                                          receiver):
    app = await _bot(sandbox, tmp_path / "data", webhook_allowed_internal="127.0.0.1")
    try:
        alice = sandbox.user("alice")
        opened = await alice.command("town-square", "/incident playbook import")
        assert opened.dialog is not None
        yaml_text = ("title: Hooked\nmembers: [alice]\nwebhooks:\n"
                     f"  - url: {receiver.url('hooked')}\n    events: [created]\n"
                     "stages:\n  - title: Triage\n    steps: [Look]\n")
        assert (await alice.submit_dialog({"yaml": yaml_text})).closed

        dm = await alice.dm_channel("incident")

        def told():  # privately: ephemeral, or by direct message
            return [p["message"] for p in [*alice.ephemeral(), *sandbox.posts(dm)] if "whsec_" in p["message"]]
        await sandbox.wait_for(told)
        secret = told()[0].split("`whsec_")[1].split("`")[0]
        [playbook] = await app.store.playbooks_for_user(sandbox.team("acme")["id"], sandbox.user_id("alice"))
        await _start_incident(sandbox, playbook.id)
        await receiver.wait_for(lambda: len(receiver.requests) >= 1)
    finally:
        await app.stop()
    [(_, headers, body)] = receiver.requests
    assert documented_verify()("whsec_" + secret, headers, body)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_a_receiver_down_for_a_while_gets_the_delivery_once_it_is_back(sandbox, tmp_path):
    port = _free_port()
    down = Receiver(port)  # not started yet: nothing listens on the port
    backoff = Backoff(base_ms=100, max_ms=400, max_attempts=50, rng=random.Random(5))
    app = await _bot(sandbox, tmp_path / "data", webhook_allowed_internal="127.0.0.1", _backoff=backoff)
    try:
        playbook = await make_playbook(app, sandbox)
        target = WebhookTarget(id="w" * 26, url=down.url("late"), events=("created",))
        await app.store.update_playbook(playbook.model_copy(update={"webhooks": (target,)}))
        await _start_incident(sandbox, playbook.id)

        async def retried() -> bool:
            jobs = await _jobs(app)
            return bool(jobs) and jobs[0].attempts >= 3 and jobs[0].state is JobState.PENDING
        await _until(sandbox, retried)
        [job] = await _jobs(app)
        assert job.attempts >= 3 and "Connect" in (job.last_error or ""), job
        await down.start()  # the receiver is back
        try:
            await down.wait_for(lambda: len(down.requests) >= 1)
        finally:
            await down.stop()

        async def done() -> bool:
            return (await _jobs(app))[0].state is JobState.DONE
        await _until(sandbox, done)
        [job] = await _jobs(app)
    finally:
        await app.stop()
    assert job.state is JobState.DONE
    [(_, headers, body)] = down.requests
    assert headers[HEADER_IDEMPOTENCY] == job.id == json.loads(body)["id"]
    assert int(headers["X-CommandCenter-Attempt"]) == job.attempts >= 4


@pytest.mark.parametrize("kill_at, sent_before_restart", [("after_claim", 0), ("after_send", 1)])
async def test_sigkill_mid_delivery_delivers_with_at_most_one_duplicate_and_the_same_key(sandbox, tmp_path, receiver,
                                                                                       kill_at, sent_before_restart,
                                                                                       e2e_database):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    log = tmp_path / "bot.log"
    hooks = {"CC_WEBHOOK_ALLOWED_INTERNAL": "127.0.0.1", "CC_TEST_HOOKS": "1",
             "CC_TEST_SCHEDULER_LEASE_MS": str(LEASE_MS)}
    bots: list[ReminderBot] = []
    try:
        first = ReminderBot(sandbox, data_dir, log, e2e_database, CC_WEBHOOK_ALLOWED_INTERNAL="127.0.0.1")
        bots.append(first)
        await first.start()
        await create_playbook(sandbox)
        await first.stop()
        store = await open_store(database(data_dir, e2e_database))
        try:  # while no bot runs: the playbook sends "created" to the receiver
            [playbook] = await store.playbooks_for_user(sandbox.team("acme")["id"], sandbox.user_id("alice"))
            target = WebhookTarget(id="w" * 26, url=receiver.url("crash"), events=("created",))
            await store.update_playbook(playbook.model_copy(update={"webhooks": (target,)}))
        finally:
            await store.close()

        doomed = ReminderBot(sandbox, data_dir, log, e2e_database, CC_TEST_KILL_AT=kill_at, **hooks)
        bots.append(doomed)
        await doomed.start()
        alice = sandbox.user("alice")
        opened = await alice.command("town-square", "/incident start Disk full")
        assert opened.dialog is not None
        try:
            await alice.submit_dialog({"playbook": playbook.id, "name": "Disk full", "description": ""})
        except Exception:  # the bot may die while answering: whatever the client sees
            pass
        assert doomed.process is not None
        assert await asyncio.wait_for(doomed.process.wait(), 60) == -9  # killed at the point
        # after_claim: claimed, not begun; after_send: the receiver has it, the job was never completed.
        assert len(receiver.requests) == sent_before_restart
        [job] = await _jobs(data_dir, e2e_database)
        assert job.state is JobState.CLAIMED and job.maybe_delivered is bool(sent_before_restart)

        restarted = ReminderBot(sandbox, data_dir, log, e2e_database, **hooks)
        bots.append(restarted)
        await restarted.start()
        await receiver.wait_for(lambda: len(receiver.requests) >= sent_before_restart + 1, timeout=30)

        async def done() -> bool:
            return (await _jobs(data_dir, e2e_database))[0].state is JobState.DONE
        await _until(sandbox, done)
        await restarted.stop()
    finally:
        for bot in bots:
            await bot.stop()
    [job] = await _jobs(data_dir, e2e_database)
    assert job.state is JobState.DONE
    keys = [headers[HEADER_IDEMPOTENCY] for _, headers, _ in receiver.requests]
    # Delivered; a duplicate only when the kill came after the send, carrying the same key and body.
    assert keys == [job.id] * (sent_before_restart + 1)
    assert len({body for _, _, body in receiver.requests}) == 1
    assert "Traceback" not in log.read_text()

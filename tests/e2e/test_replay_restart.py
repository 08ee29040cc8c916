"""Captured requests stay spent after the bot restarts (issue 13, F8).

Spent dialog nonces and trigger ids are kept in the store, so replaying a captured End
submission or a ``/incident stage next`` form against a restarted bot (same data directory)
changes nothing and is answered with a clear refusal; genuine concurrent requests still all work.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from urllib.parse import urlencode, urlsplit

import aiohttp

from domain.models import IncidentStatus
from gateway.ids import Route
from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import start_incident

FORM = "application/x-www-form-urlencoded"


def latest_callback(sandbox, kind: str):
    return [c for c in sandbox.callbacks if c.kind == kind][-1]


async def replay(bot, callback) -> tuple[int, dict]:
    """Send a captured callback again, exactly as Mattermost sent it, to ``bot`` (its port may differ)."""
    target = f"http://127.0.0.1:{bot.inbound.port}{urlsplit(callback.url).path}"
    headers = {k: v for k, v in callback.headers.items() if k.lower() in ("content-type", "authorization")}
    async with aiohttp.ClientSession() as http, http.post(target, data=callback.body, headers=headers) as response:
        return response.status, await response.json()


async def test_a_captured_end_submission_is_refused_after_a_restart(sandbox, start_bot):
    bot = await start_bot()
    await make_playbook(bot, sandbox, members=("alice",))
    incident, channel = await start_incident(sandbox, bot, "alice", "Checkout errors")
    alice = sandbox.user("alice")
    assert (await alice.command(channel["id"], "/incident end")).dialog is not None
    assert (await alice.submit_dialog({})).closed
    captured_end = latest_callback(sandbox, "dialog")
    assert (await alice.command(channel["id"], "/incident restart")).dialog is not None
    assert (await alice.submit_dialog({})).closed
    assert (await bot.store.get_incident(incident.id)).status is IncidentStatus.ONGOING

    await bot.stop()
    again = await start_bot()
    status, answer = await replay(again, captured_end)
    assert status == 401
    assert answer == {"error": "this dialog was already submitted; open it again to make another change"}
    assert (await again.store.get_incident(incident.id)).status is IncidentStatus.ONGOING

    # The restarted bot still takes new dialogs: a fresh End works.
    assert (await alice.command(channel["id"], "/incident end")).dialog is not None
    assert (await alice.submit_dialog({})).closed
    assert (await again.store.get_incident(incident.id)).status is IncidentStatus.ENDED


async def test_a_captured_stage_next_command_is_refused_after_a_restart(sandbox, start_bot):
    bot = await start_bot()
    await make_playbook(bot, sandbox, members=("alice",))
    incident, channel = await start_incident(sandbox, bot, "alice", "Checkout errors")
    alice = sandbox.user("alice")
    assert (await alice.command(channel["id"], "/incident stage next")).status == 200
    captured = latest_callback(sandbox, "command")
    assert (await bot.store.get_incident(incident.id)).active_stage == 1

    await bot.stop()
    again = await start_bot()
    status, answer = await replay(again, captured)
    assert (status, answer) == (401, {"error": "trigger id already used"})
    assert (await again.store.get_incident(incident.id)).active_stage == 1
    # A genuine command after the restart still works.
    assert (await alice.command(channel["id"], "/incident stage next")).status == 200
    assert (await again.store.get_incident(incident.id)).active_stage == 2


def minted_trigger(user_id: str, client_id: str) -> str:
    return base64.b64encode(f"{client_id}:{user_id}:{int(time.time() * 1000)}:c2ln".encode()).decode()


async def test_two_copies_of_one_command_at_once_run_once(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    incident, channel = await start_incident(sandbox, bot, "alice", "Checkout errors")
    await sandbox.user("alice").command(channel["id"], "/incident info")
    fields = {key: values[0] for key, values in latest_callback(sandbox, "command").form().items()}
    fields.update(text="stage next", trigger_id=minted_trigger(sandbox.user_id("alice"), "r" * 26))
    body = urlencode(fields).encode()
    target = f"http://127.0.0.1:{bot.inbound.port}{Route.COMMAND.value}"
    async with aiohttp.ClientSession() as http:
        async def send() -> int:
            async with http.post(target, data=body, headers={"Content-Type": FORM}) as response:
                await response.read()
                return response.status
        statuses = await asyncio.gather(*(send() for _ in range(4)))
    assert sorted(statuses) == [200, 401, 401, 401]
    assert (await bot.store.get_incident(incident.id)).active_stage == 1


async def test_different_submissions_at_the_same_moment_all_succeed(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    opened = [await person.command("town-square", f"/incident start {name}")
              for person, name in ((alice, "Search down"), (bob, "Billing down"))]
    playbook = opened[0].dialog["dialog"]["elements"][0]["options"][0]["value"]
    results = await asyncio.gather(
        alice.submit_dialog({"playbook": playbook, "name": "Search down", "description": ""}),
        bob.submit_dialog({"playbook": playbook, "name": "Billing down", "description": ""}))
    assert all(result.closed for result in results), [(r.errors, r.error) for r in results]
    page = await bot.store.list_incidents(sandbox.team("acme")["id"], is_admin=True)
    assert sorted(i.name for i in page.items) == ["Billing down", "Search down"]

    # One person's two commands at once (two trigger ids) both run.
    search = next(i for i in page.items if i.name == "Search down")
    results = await asyncio.gather(alice.command(search.channel_id, "/incident check 1.1"),
                                   alice.command(search.channel_id, "/incident check 1.2"))
    assert [r.status for r in results] == [200, 200]
    steps = (await bot.store.get_incident(search.id)).stages[0].steps
    assert [s.done for s in steps[:3]] == [True, True, False]


async def test_copies_of_one_dialog_submission_sent_at_once_run_once(sandbox, bot):
    """Of several copies of one submission arriving together, one runs: the nonce is claimed
    atomically in the store before the handler runs, not after it answers."""
    alice = sandbox.user("alice")
    assert (await alice.command("town-square", "/incident playbook import")).dialog is not None
    dialog = alice.dialog["dialog"]
    town_square = sandbox.channel("acme", "town-square")
    body = json.dumps({
        "type": "dialog_submission", "callback_id": dialog["callback_id"], "state": dialog["state"],
        "user_id": alice.id, "channel_id": town_square["id"], "team_id": town_square["team_id"],
        "submission": {"yaml": "title: Twice\nstages:\n  - title: A\n"}, "cancelled": False}).encode()
    target = f"http://127.0.0.1:{bot.inbound.port}{Route.DIALOG.value}"
    async with aiohttp.ClientSession() as http:
        async def send() -> int:
            async with http.post(target, data=body, headers={"Content-Type": "application/json"}) as response:
                await response.read()
                return response.status
        statuses = await asyncio.gather(*(send() for _ in range(4)))
    assert sorted(statuses) == [200, 401, 401, 401]
    playbooks = await bot.store.playbooks_for_user(town_square["team_id"], "", is_admin=True)
    assert [(p.title, p.version) for p in playbooks] == [("Twice", 1)]  # created once, never re-imported

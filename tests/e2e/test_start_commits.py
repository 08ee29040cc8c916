"""Commits per start (issue 15): with ``synchronous=FULL`` every commit is an fsync, so a start merges the writes
that belong together — the dialog's single-use key with the journal and the channel-name claim, the card's
post id with the journal's removal — without weakening what a replay or a crash can do."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from gateway.ids import Route
from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import all_incidents, card
from tests.e2e.test_replay_restart import latest_callback, replay
from tests.e2e.test_start_flow_calls import start

CHECKPOINT_KEY = "websocket.checkpoint"


async def _trace_transactions(store):
    """Every statement the writer's connection runs (on its own thread), grouped into committed
    transactions; returns (transactions, stop)."""
    committed: list[list[str]] = []
    current: list[str] = []
    writer = store._writer
    level = ["FULL"]

    def trace(sql: str) -> None:
        words = sql.strip().upper()
        if words.startswith("PRAGMA SYNCHRONOUS ="):
            level[0] = words.rsplit("=", 1)[1].strip()
        if words.startswith("BEGIN"):
            current.clear()
        elif words.startswith("COMMIT"):
            committed.append(list(current))
            store.commit_levels.append(level[0])
        elif words.startswith("ROLLBACK"):
            current.clear()
        else:
            current.append(sql)

    await writer._execute(lambda: writer._conn.set_trace_callback(trace))

    async def stop() -> None:
        await writer._execute(lambda: writer._conn.set_trace_callback(None))

    return committed, stop


def _touches(transaction: list[str], *words: str) -> bool:
    return any(word in sql for sql in transaction for word in words)


@pytest.mark.parametrize("e2e_database", ["sqlite"], indirect=True)  # counts SQLite writer statements
async def test_a_start_commits_four_times(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    await start(sandbox, "alice", "Warm up")
    bot.inbound.replays.prune_every_ms = 10**9  # the periodic prune of expired keys is not part of a start
    bot.store.commit_levels = []  # the synchronous level of each commit: FULL waits for the disk
    committed, stop = await _trace_transactions(bot.store)
    try:
        await start(sandbox, "alice", "Payments down")
        (incident,) = [i for i in await all_incidents(bot) if i.name == "Payments down"]
        await sandbox.wait_for(lambda: card(sandbox, incident), timeout=10)
    finally:
        await stop()
    # The WebSocket checkpoint is debounced (at most one a second, whatever the traffic): not counted.
    levels = [level for t, level in zip(committed, bot.store.commit_levels, strict=True)
              if not (len(t) == 1 and CHECKPOINT_KEY in json.dumps(t))]
    start_commits = [t for t in committed if not (len(t) == 1 and CHECKPOINT_KEY in json.dumps(t))]
    assert len(start_commits) == 4, start_commits
    # Two wait for the disk: the trigger id, and the journal before anything is made in Mattermost. The
    # incident and the card's post id need not: after a power loss the journal redoes them (recover()).
    assert levels == ["FULL", "FULL", "NORMAL", "NORMAL"], levels
    trigger, planned, created, finished = start_commits
    assert _touches(trigger, "single_use_keys") and len(trigger) == 2  # the /incident start trigger id
    # The dialog's nonce, the journal and the name claim: one commit, before anything is made in Mattermost.
    assert _touches(planned, "single_use_keys") and len([s for s in planned if s.startswith("INSERT") and "settings" in s]) == 2
    assert _touches(created, "INSERT INTO incidents", "timeline_events")
    # The card's post id with the journal's removal and the claim's release.
    assert _touches(finished, "UPDATE incidents") and len([s for s in finished if "DELETE FROM settings" in s]) == 2
    # Nothing is left half-done: the incident has its pinned card, no journal or claim is left.
    assert card(sandbox, incident)["id"] == incident.card_post_id
    assert await bot.store.settings_with_prefix("start:") == {}
    assert await bot.store.settings_with_prefix("start-channel:") == {}


async def _start_dialog(sandbox, person):
    result = await person.command("town-square", "/incident start")
    assert result.dialog is not None, (result.ephemeral, result.error)
    return person.dialog["dialog"]


async def test_copies_of_one_start_submission_sent_at_once_start_one_incident(sandbox, bot):
    """The nonce is claimed in the start's first write: copies that arrive together may all read, but
    only one gets past that write, and only it makes anything in Mattermost."""
    await make_playbook(bot, sandbox, members=("alice",))
    alice = sandbox.user("alice")
    dialog = await _start_dialog(sandbox, alice)
    town_square = sandbox.channel("acme", "town-square")
    playbook = dialog["elements"][0]["options"][0]["value"]
    body = json.dumps({
        "type": "dialog_submission", "callback_id": dialog["callback_id"], "state": dialog["state"],
        "user_id": alice.id, "channel_id": town_square["id"], "team_id": town_square["team_id"],
        "submission": {"playbook": playbook, "name": "Once only", "description": None},
        "cancelled": False}).encode()
    target = f"http://127.0.0.1:{bot.inbound.port}{Route.DIALOG.value}"
    async with aiohttp.ClientSession() as http:
        async def send() -> tuple[int, dict]:
            async with http.post(target, data=body, headers={"Content-Type": "application/json"}) as response:
                return response.status, await response.json()
        answers = await asyncio.gather(*(send() for _ in range(4)))
    assert sorted(status for status, _ in answers) == [200, 401, 401, 401]
    refused = [answer for status, answer in answers if status == 401]
    assert refused == [{"error": "this dialog was already submitted; open it again to make another change"}] * 3
    assert [i.name for i in await all_incidents(bot)] == ["Once only"]
    made = [c["name"] for c in sandbox.world.channels.values() if c["name"].startswith("once-only")]
    assert made == ["once-only"]
    assert await bot.store.settings_with_prefix("start:") == {}


async def test_a_captured_start_submission_is_refused_after_a_restart(sandbox, start_bot):
    bot = await start_bot()
    await make_playbook(bot, sandbox, members=("alice",))
    await start(sandbox, "alice", "Captured")
    captured = latest_callback(sandbox, "dialog")
    await bot.stop()
    again = await start_bot()
    status, answer = await replay(again, captured)
    assert status == 401, answer
    assert answer == {"error": "this dialog was already submitted; open it again to make another change"}
    assert [i.name for i in await all_incidents(again)] == ["Captured"]


async def test_a_start_answered_with_errors_can_be_submitted_again(sandbox, bot):
    """A submission refused at a field (the name) spends nothing: the same dialog is corrected and sent."""
    await make_playbook(bot, sandbox, members=("alice",))
    alice = sandbox.user("alice")
    dialog = await _start_dialog(sandbox, alice)
    playbook = dialog["elements"][0]["options"][0]["value"]
    refused = await alice.submit_dialog({"playbook": playbook, "name": "", "description": None})
    assert not refused.closed and "name" in refused.errors
    accepted = await alice.submit_dialog({"playbook": playbook, "name": "Second try", "description": None})
    assert accepted.closed, (accepted.errors, accepted.error)
    assert [i.name for i in await all_incidents(bot)] == ["Second try"]

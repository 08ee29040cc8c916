"""A status update's copies survive SIGKILL of the real bot process (services/updates.py, the
``update_fanout`` job): killed right after the update's commit (the job is in the store, no copy
sent) or right after its first copy, the restarted bot sends the rest — each broadcast channel and
each follower has exactly one copy.

The kill points are test-only hooks (``CC_TEST_HOOKS=1`` with ``CC_TEST_KILL_AT``, see
services/scheduler.py); ``CC_TEST_SCHEDULER_LEASE_MS`` shortens the lease so that the dead
process's claim expires in a second and a half.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.updates import FANOUT_KIND, FANOUT_PROP, FANOUT_TO_PROP
from storage import open_store
from storage.jobs import Job, JobState
from tests.e2e.test_reminder_sigkill import LEASE_MS, ReminderBot, database, start_incident, wait_until_done
from tests.e2e.test_start_recovery import BOT_TOKEN_USER, create_playbook


async def configure(data_dir: Path, incident_id: str, broadcast: tuple[str, ...], followers: tuple[str, ...]) -> None:
    """While no bot runs: the incident's broadcast channels and followers."""
    store = await open_store(database(data_dir, None))
    try:
        def change(current):
            updates = current.updates.model_copy(update={"broadcast_channel_ids": broadcast})
            return current.model_copy(update={"updates": updates, "follower_ids": followers}), []
        await store.mutate_incident(incident_id, change)
    finally:
        await store.close()


async def fanout_jobs(data_dir: Path) -> list[Job]:
    store = await open_store(database(data_dir, None))
    try:
        return await store.list_jobs(kind=FANOUT_KIND)
    finally:
        await store.close()


def copies(sandbox, channel_id: str) -> list[dict]:
    return [p for p in sandbox.posts(channel_id) if (p.get("props") or {}).get(FANOUT_PROP)]


@pytest.mark.parametrize("kill_at, copies_before_restart", [("after_update_write", 0), ("after_first_copy", 1)])
async def test_sigkill_around_an_updates_copies_sends_each_copy_exactly_once(sandbox, tmp_path, kill_at,
                                                                           copies_before_restart):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    log = tmp_path / "bot.log"
    bots: list[ReminderBot] = []
    alice = sandbox.user("alice")
    try:
        first = ReminderBot(sandbox, data_dir, log)
        bots.append(first)
        await first.start()
        await create_playbook(sandbox)
        incident = await start_incident(sandbox, database(data_dir, None))
        await first.stop()
        await alice.add_member("off-topic", BOT_TOKEN_USER)  # the bot must be in a broadcast channel
        channels = (sandbox.channel("acme", "town-square")["id"], sandbox.channel("acme", "off-topic")["id"])
        followers = ("bob", "carol")  # not in the incident channel (a public incident: they may follow)
        await configure(data_dir, incident.id, channels, tuple(sandbox.user_id(u) for u in followers))
        dms = {u: await sandbox.user(u).dm_channel(BOT_TOKEN_USER) for u in followers}
        targets = {**{f"channel:{c}": c for c in channels},
                   **{f"user:{sandbox.user_id(u)}": dm for u, dm in dms.items()}}

        doomed = ReminderBot(sandbox, data_dir, log, CC_TEST_HOOKS="1", CC_TEST_KILL_AT=kill_at,
                             CC_TEST_SCHEDULER_LEASE_MS=str(LEASE_MS))
        bots.append(doomed)
        await doomed.start()
        opened = await alice.command(incident.channel_id, "/incident update")
        assert opened.dialog is not None, (opened.ephemeral, opened.error)
        try:
            await alice.submit_dialog({"text": "Disk cleaned up", "next_in": "none"})
        except Exception:  # the bot died while answering: whatever the client sees
            pass
        assert doomed.process is not None
        assert await asyncio.wait_for(doomed.process.wait(), 60) == -9  # it killed itself at the point
        [job] = await fanout_jobs(data_dir)  # the job was committed with the update
        assert job.state is (JobState.PENDING if kill_at == "after_update_write" else JobState.CLAIMED)
        assert sum(len(copies(sandbox, c)) for c in targets.values()) == copies_before_restart

        restarted = ReminderBot(sandbox, data_dir, log, CC_TEST_HOOKS="1", CC_TEST_SCHEDULER_LEASE_MS=str(LEASE_MS))
        bots.append(restarted)
        await restarted.start()

        await wait_until_done(sandbox, database(data_dir, None), job.id)
        await restarted.stop()
    finally:
        for bot in bots:
            await bot.stop()
    for target, channel_id in targets.items():
        made = [p for p in copies(sandbox, channel_id) if p["props"][FANOUT_PROP] == job.id]
        assert len(made) == 1, (target, made)
        assert made[0]["props"][FANOUT_TO_PROP] == target and "Disk cleaned up" in made[0]["message"]
    assert "Traceback" not in log.read_text()

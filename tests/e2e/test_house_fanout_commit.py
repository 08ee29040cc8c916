"""A status update and its copies' job are one commit (services/updates.py ``schedule_copies``, an
``IncidentService.in_transaction`` listener): SIGKILL of the real bot inside the update's store
transaction, once the ``update_fanout`` job is written but before the commit, leaves neither the
update nor its job; the restarted bot takes the same update again and sends each copy exactly once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from domain.models import EventKind
from services.updates import FANOUT_PROP, FANOUT_TO_PROP, KILL_BEFORE_UPDATE_COMMIT
from storage import open_store
from tests.e2e.test_reminder_sigkill import LEASE_MS, ReminderBot, database, start_incident, wait_until_done
from tests.e2e.test_start_recovery import BOT_TOKEN_USER, create_playbook
from tests.e2e.test_update_fanout_sigkill import configure, copies, fanout_jobs


async def status_updates(data_dir: Path, incident_id: str) -> list[str]:
    store = await open_store(database(data_dir, None))
    try:
        return [str(e.details.get("message")) for e in await store.timeline(incident_id)
                if e.kind is EventKind.STATUS_UPDATE]
    finally:
        await store.close()


async def post_update(sandbox, incident, text: str) -> None:
    alice = sandbox.user("alice")
    opened = await alice.command(incident.channel_id, "/incident update")
    assert opened.dialog is not None, (opened.ephemeral, opened.error)
    await alice.submit_dialog({"text": text, "next_in": "none"})


async def test_sigkill_before_the_updates_commit_loses_both_and_the_retry_copies_once(sandbox, tmp_path):
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
        followers = ("bob", "carol")
        await configure(data_dir, incident.id, channels, tuple(sandbox.user_id(u) for u in followers))
        dms = {u: await sandbox.user(u).dm_channel(BOT_TOKEN_USER) for u in followers}
        targets = {**{f"channel:{c}": c for c in channels},
                   **{f"user:{sandbox.user_id(u)}": dm for u, dm in dms.items()}}
        posts_before = len(sandbox.posts(incident.channel_id))

        doomed = ReminderBot(sandbox, data_dir, log, CC_TEST_HOOKS="1", CC_TEST_KILL_AT=KILL_BEFORE_UPDATE_COMMIT,
                             CC_TEST_SCHEDULER_LEASE_MS=str(LEASE_MS))
        bots.append(doomed)
        await doomed.start()
        try:
            await post_update(sandbox, incident, "Disk cleaned up")
        except Exception:  # the bot died while answering: whatever the client sees
            pass
        assert doomed.process is not None
        assert await asyncio.wait_for(doomed.process.wait(), 60) == -9  # it killed itself inside the transaction
        # Nothing half-done: no update on the timeline, no job, no post, no copy.
        assert await status_updates(data_dir, incident.id) == []
        assert await fanout_jobs(data_dir) == []
        assert len(sandbox.posts(incident.channel_id)) == posts_before
        assert sum(len(copies(sandbox, c)) for c in targets.values()) == 0

        restarted = ReminderBot(sandbox, data_dir, log, CC_TEST_HOOKS="1", CC_TEST_SCHEDULER_LEASE_MS=str(LEASE_MS))
        bots.append(restarted)
        await restarted.start()
        await post_update(sandbox, incident, "Disk cleaned up")
        [job] = await fanout_jobs(data_dir)
        await wait_until_done(sandbox, database(data_dir, None), job.id)
        await restarted.stop()
    finally:
        for bot in bots:
            await bot.stop()
    assert await status_updates(data_dir, incident.id) == ["Disk cleaned up"]
    for target, channel_id in targets.items():
        made = copies(sandbox, channel_id)
        assert len(made) == 1, (target, made)
        assert made[0]["props"][FANOUT_PROP] == job.id and made[0]["props"][FANOUT_TO_PROP] == target
        assert "Disk cleaned up" in made[0]["message"]
    assert "Traceback" not in log.read_text()

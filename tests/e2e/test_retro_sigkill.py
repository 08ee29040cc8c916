"""The retrospective reminder survives SIGKILL of the real bot process (issue 18): killed just after
claiming it, or just after sending it (before the job is completed), the restarted bot sends the
commander's direct message exactly once. The harness is test_reminder_sigkill.py's."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from domain import incidents
from services.retro import RETRO_REMINDER_KIND, RETRO_REMINDER_PROP
from storage import open_store
from storage.jobs import JobState
from tests.e2e.test_reminder_sigkill import LEASE_MS, ReminderBot, database, job_state, start_incident, wait_until_done
from tests.e2e.test_start_recovery import BOT_TOKEN_USER, create_playbook


async def end_with_reminder_due_now(data_dir: Path, incident_id: str) -> str:
    """While no bot runs: the incident ended an hour ago, its retrospective pending, and its reminder
    job due now in the store (as the running bot leaves it at the end)."""
    store = await open_store(database(data_dir, None))
    try:
        now = int(time.time() * 1000)
        ended, _ = await store.mutate_incident(incident_id, lambda i: incidents.end_incident(i, "bench", now - 3_600_000))
        job = await store.schedule_job(RETRO_REMINDER_KIND, incident_id, due_at=now, now=now,
                                       payload={"ended_at": ended.ended_at})
        return job.id
    finally:
        await store.close()


def reminder_posts(sandbox, channel_id: str, job_id: str) -> list[dict]:
    return [p for p in sandbox.posts(channel_id) if (p.get("props") or {}).get(RETRO_REMINDER_PROP) == job_id]


@pytest.mark.parametrize("kill_at, sent_before_restart", [("after_claim", 0), ("after_send", 1)])
async def test_sigkill_around_a_retro_reminder_sends_it_exactly_once(sandbox, tmp_path, kill_at, sent_before_restart):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    log = tmp_path / "bot.log"
    bots: list[ReminderBot] = []
    try:
        first = ReminderBot(sandbox, data_dir, log)
        bots.append(first)
        await first.start()
        await create_playbook(sandbox)
        incident = await start_incident(sandbox, database(data_dir, None))
        await first.stop()
        job_id = await end_with_reminder_due_now(data_dir, incident.id)
        dm = await sandbox.user("alice").dm_channel(BOT_TOKEN_USER)

        doomed = ReminderBot(sandbox, data_dir, log, CC_TEST_HOOKS="1", CC_TEST_KILL_AT=kill_at,
                             CC_TEST_SCHEDULER_LEASE_MS=str(LEASE_MS))
        bots.append(doomed)
        await doomed.start(wait_registered=False)
        assert doomed.process is not None
        assert await asyncio.wait_for(doomed.process.wait(), 60) == -9  # it killed itself at the point
        assert len(reminder_posts(sandbox, dm, job_id)) == sent_before_restart
        assert await job_state(database(data_dir, None), job_id) is JobState.CLAIMED

        restarted = ReminderBot(sandbox, data_dir, log, CC_TEST_HOOKS="1", CC_TEST_SCHEDULER_LEASE_MS=str(LEASE_MS))
        bots.append(restarted)
        await restarted.start()
        await wait_until_done(sandbox, database(data_dir, None), job_id)
        await restarted.stop()
    finally:
        for bot in bots:
            await bot.stop()
    assert len(reminder_posts(sandbox, dm, job_id)) == 1
    assert "Traceback" not in log.read_text()

"""A reminder survives SIGKILL of the real bot process: killed just after claiming it, or just after
sending it (before the job is completed), the restarted bot delivers each reminder exactly once —
one post in the incident channel and one in the commander's DM (issue 17).

The kill points are the scheduler's test-only hooks (``CC_TEST_HOOKS=1`` with
``CC_TEST_KILL_AT``); ``CC_TEST_SCHEDULER_LEASE_MS`` shortens the lease so the dead process's
claim expires in a second instead of a minute.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from services.reminders import REMINDER_KIND, REMINDER_PROP
from storage import open_store
from storage.jobs import JobState
from tests.e2e.test_start_recovery import BOT_TOKEN_USER, ROOT, create_playbook, free_port

LEASE_MS = 1500


class ReminderBot:
    """``python bot.py`` against the sandbox, with the scheduler's test hooks as given."""

    def __init__(self, sandbox, data_dir: Path, log: Path, database_url: str | None = None, **hooks: str) -> None:
        self.sandbox, self.data_dir, self.log, self.hooks = sandbox, data_dir, log, hooks
        if database_url is not None:  # the e2e suite's PostgreSQL run (tests/e2e/conftest.py)
            self.hooks["CC_DATABASE_URL"] = database_url
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, *, wait_registered: bool = True) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
        env.update({"CC_MATTERMOST_URL": self.sandbox.url, "CC_BOT_TOKEN": self.sandbox.token_of(BOT_TOKEN_USER),
                    "CC_LISTEN_HOST": "127.0.0.1", "CC_LISTEN_PORT": str(self.port),
                    "CC_DATA_DIR": str(self.data_dir), "CC_LOG_LEVEL": "INFO", **self.hooks})
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(sys.executable, str(ROOT / "bot.py"), env=env,
                                                                cwd=str(self.data_dir.parent), stdout=log, stderr=log)
        if wait_registered:
            team_id = self.sandbox.team("acme")["id"]
            url = f"http://127.0.0.1:{self.port}/mattermost/command"
            await self.sandbox.wait_for(lambda: any(c["url"] == url for c in self.sandbox.commands(team_id)),
                                        timeout=30)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 30)


def database(data_dir: Path, e2e_database: str | None) -> str:
    """The URL of the database the bots use: their default SQLite file, or the PostgreSQL run's."""
    return e2e_database or f"sqlite:///{data_dir / 'command-center.db'}"


async def start_incident(sandbox, db: str):
    alice = sandbox.user("alice")
    result = await alice.command("town-square", "/incident start Disk full")
    playbook_id = result.dialog["dialog"]["elements"][0]["options"][0]["value"]
    outcome = await alice.submit_dialog({"playbook": playbook_id, "name": "Disk full", "description": ""})
    assert outcome.closed
    store = await open_store(db)
    try:
        page = await store.list_incidents(sandbox.team("acme")["id"], is_admin=True)
        return page.items[0]
    finally:
        await store.close()


async def make_due_now(db: str, incident_id: str) -> str:
    """While no bot runs: the incident's update is due now and its reminder job is in the store (as a
    running bot leaves it when the due time is set)."""
    store = await open_store(db)
    try:
        now = int(time.time() * 1000)
        await store.mutate_incident(incident_id, lambda i: (i.model_copy(update={"next_update_due_at": now}), []))
        job = await store.schedule_job(REMINDER_KIND, incident_id, due_at=now, now=now, payload={"due_at": now},
                                       incident_id=incident_id)
        return job.id
    finally:
        await store.close()


async def job_state(db: str, job_id: str) -> JobState | None:
    store = await open_store(db)
    try:
        job = await store.get_job(job_id)
        return job.state if job else None
    finally:
        await store.close()


async def wait_until_done(sandbox, db: str, job_id: str) -> None:
    """Until the restarted bot has finished the job. Finishing it may change nothing in Mattermost
    (after a send, the delivery check only reads), so the store is looked at again on every change
    the sandbox sees and at least every 0.2 s, up to 30 s."""
    async def done() -> bool:
        return await job_state(db, job_id) is JobState.DONE

    for _ in range(150):
        try:
            await sandbox.wait_for(done, timeout=0.2)
            return
        except TimeoutError:
            continue
    assert await done(), f"job {job_id} was not done 30 s after the restart"


def reminder_posts(sandbox, channel_id: str, job_id: str) -> list[dict]:
    return [p for p in sandbox.posts(channel_id) if (p.get("props") or {}).get(REMINDER_PROP) == job_id]


@pytest.mark.parametrize("kill_at, sent_before_restart", [("after_claim", 0), ("after_send", 1)])
async def test_sigkill_around_a_reminder_delivers_it_exactly_once(sandbox, tmp_path, kill_at, sent_before_restart,
                                                                  e2e_database):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    db = database(data_dir, e2e_database)
    log = tmp_path / "bot.log"
    bots: list[ReminderBot] = []
    try:
        first = ReminderBot(sandbox, data_dir, log, e2e_database)
        bots.append(first)
        await first.start()
        await create_playbook(sandbox)
        incident = await start_incident(sandbox, db)
        await first.stop()
        job_id = await make_due_now(db, incident.id)
        dm = await sandbox.user("alice").dm_channel(BOT_TOKEN_USER)

        doomed = ReminderBot(sandbox, data_dir, log, e2e_database, CC_TEST_HOOKS="1", CC_TEST_KILL_AT=kill_at,
                             CC_TEST_SCHEDULER_LEASE_MS=str(LEASE_MS))
        bots.append(doomed)
        await doomed.start(wait_registered=False)
        assert doomed.process is not None
        assert await asyncio.wait_for(doomed.process.wait(), 60) == -9  # it killed itself at the point
        assert len(reminder_posts(sandbox, incident.channel_id, job_id)) == sent_before_restart
        assert len(reminder_posts(sandbox, dm, job_id)) == sent_before_restart
        assert await job_state(db, job_id) is JobState.CLAIMED

        restarted = ReminderBot(sandbox, data_dir, log, e2e_database, CC_TEST_HOOKS="1", CC_TEST_SCHEDULER_LEASE_MS=str(LEASE_MS))
        bots.append(restarted)
        await restarted.start()

        await wait_until_done(sandbox, db, job_id)
        await restarted.stop()
    finally:
        for bot in bots:
            await bot.stop()
    assert len(reminder_posts(sandbox, incident.channel_id, job_id)) == 1
    assert len(reminder_posts(sandbox, dm, job_id)) == 1
    assert "Traceback" not in log.read_text()

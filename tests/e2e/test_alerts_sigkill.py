"""An alert answered 200 is posted exactly once even if the bot process is SIGKILLed: before its post
job ran, just after claiming it, or just after posting (before the job is completed) — issue 21.

The kill points are the scheduler's test-only hooks (``CC_TEST_HOOKS=1`` with ``CC_TEST_KILL_AT``;
services/scheduler.py), with a short lease so the dead process's claim expires quickly.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp
import pytest

from services.alerts import GROUP_MARK, NOTIFY_KIND
from storage import open_store
from storage.jobs import JobState
from tests.e2e.test_alerts import ALERTMANAGER, AM_SECRET, RULES
from tests.e2e.test_reminder_sigkill import LEASE_MS, ReminderBot, database


async def notify_jobs(data_dir: Path):
    store = await open_store(database(data_dir, None))
    try:
        return await store.list_jobs(kind=NOTIFY_KIND)
    finally:
        await store.close()


async def alerts_recorded(data_dir: Path) -> int:
    store = await open_store(database(data_dir, None))
    try:
        return await store.count_alerts()
    finally:
        await store.close()


def suggestions(sandbox) -> list[dict]:
    channel = sandbox.channel("acme", "town-square")["id"]
    return [p for p in sandbox.posts(channel) if GROUP_MARK in (p.get("props") or {})]


async def send(port: int) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{port}/alerts/alertmanager", data=json.dumps(ALERTMANAGER),
                             headers={"Authorization": f"Bearer {AM_SECRET}",
                                      "Content-Type": "application/json"}) as response:
            return response.status


@pytest.mark.parametrize("kill_at, posted_before_restart", [("", 0), ("after_claim", 0), ("after_send", 1)])
async def test_sigkill_around_an_alert_posts_it_exactly_once(sandbox, tmp_path, kill_at, posted_before_restart):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    log = tmp_path / "bot.log"
    rules = tmp_path / "rules.yaml"
    # "" kills the process from outside while the post job waits for its batch delay.
    rules.write_text(RULES.replace("batch_delay: 0s", "batch_delay: 60s" if not kill_at else "batch_delay: 0s"),
                     encoding="utf-8")
    settings = {"CC_ALERTS_RULES_FILE": str(rules), "CC_ALERTS_ALERTMANAGER_SECRET": AM_SECRET,
                "CC_TEST_HOOKS": "1", "CC_TEST_SCHEDULER_LEASE_MS": str(LEASE_MS)}
    bots: list[ReminderBot] = []
    try:
        doomed = ReminderBot(sandbox, data_dir, log, **settings, **({"CC_TEST_KILL_AT": kill_at} if kill_at else {}))
        bots.append(doomed)
        await doomed.start()
        assert doomed.process is not None
        assert await send(doomed.port) == 200
        if not kill_at:
            doomed.process.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(doomed.process.wait(), 60) == -9
        assert len(suggestions(sandbox)) == posted_before_restart
        assert await alerts_recorded(data_dir) == 1
        [job] = await notify_jobs(data_dir)
        assert job.state is (JobState.PENDING if not kill_at else JobState.CLAIMED)

        if not kill_at:  # the batch delay has not passed yet: the job is made due now (no sleeping for it)
            rules.write_text(RULES, encoding="utf-8")
            store = await open_store(database(data_dir, None))
            try:
                await store.schedule_job(NOTIFY_KIND, job.key, due_at=0, now=0, payload=dict(job.payload))
            finally:
                await store.close()
        restarted = ReminderBot(sandbox, data_dir, log, **settings)
        bots.append(restarted)
        await restarted.start()

        async def finished() -> bool:
            jobs = await notify_jobs(data_dir)
            return bool(jobs) and all(j.state in (JobState.DONE, JobState.CANCELLED) for j in jobs)

        await sandbox.wait_for(lambda: len(suggestions(sandbox)) >= 1, timeout=30)
        for _ in range(150):
            if await finished():
                break
            try:
                await sandbox.wait_for(finished, timeout=0.2)
            except TimeoutError:
                continue
        assert await finished()
        await restarted.stop()
    finally:
        for bot in bots:
            await bot.stop()
    assert len(suggestions(sandbox)) == 1
    assert "Traceback" not in log.read_text()

"""SIGKILL a bot process just before and just after a reminder is claimed and sent: after the
restart every reminder has been delivered exactly once (issue 17)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from storage import JobState
from storage.sqlite import SqliteStore

WORKER = Path(__file__).with_name("sched_worker.py")
KIND = "update_reminder"
T = 1_700_000_000_000
LEASE_MS = 60_000  # the worker's
KEYS = [f"incident-{n}" for n in range(5)]


async def run_worker(db: Path, log: Path, now_ms: int, *, kill_at: str = "", kill_key: str = "") -> int:
    env = {**os.environ, "SCHED_KILL_AT": kill_at, "SCHED_KILL_KEY": kill_key}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(WORKER), str(db), str(log), str(now_ms), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    if proc.returncode == 0:
        assert out == b"settled\n", out + err
    assert proc.returncode in (0, -signal.SIGKILL), err.decode()
    return proc.returncode


@pytest.mark.parametrize("kill_at", ["before_claim", "after_claim", "after_begin", "after_send"])
async def test_sigkill_around_claim_and_send_delivers_each_reminder_exactly_once(tmp_path, kill_at):
    db, log = tmp_path / "bot.db", tmp_path / "delivered.log"
    store = SqliteStore(db)
    await store.open()
    ids = {}
    for n, key in enumerate(KEYS):
        job = await store.schedule_job(KIND, key, due_at=T + n, now=T - LEASE_MS, incident_id=None)
        ids[job.id] = key
    await store.close()

    victim = KEYS[2]
    assert await run_worker(db, log, T + 10, kill_at=kill_at, kill_key=victim) == -signal.SIGKILL
    before = Counter(line.split()[1] for line in log.read_text().splitlines()) if log.exists() else Counter()
    assert before == Counter({key: 1 for key in KEYS[:2] + ([victim] if kill_at == "after_send" else [])})

    # The restart comes after the dead process's lease (its claim is then known to be abandoned).
    assert await run_worker(db, log, T + 10 + LEASE_MS) == 0

    delivered = Counter(line.split()[0] for line in log.read_text().splitlines())
    assert delivered == Counter({job_id: 1 for job_id in ids}), (kill_at, delivered)
    store = SqliteStore(db)
    await store.open()
    try:
        jobs = {j.key: j for j in await store.list_jobs()}
        assert {key: j.state for key, j in jobs.items()} == {key: JobState.DONE for key in KEYS}
        # Claimed after the restart: late (the kill held them past their due time); the first two fired on time.
        assert [jobs[key].late for key in KEYS] == [False, False, True, True, True]
    finally:
        await store.close()

"""SIGKILL a process writing incidents at random moments: after every kill, each incident's stored
metrics summary still equals the recomputation from its events (they are written in one
transaction), and the store opens cleanly."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path

from domain.metrics import summarize
from storage.sqlite import SqliteStore

WRITER = Path(__file__).with_name("metrics_crash_writer.py")


async def run_and_kill(db_path: Path, seed: int, acks_before_kill: int) -> int:
    proc = await asyncio.create_subprocess_exec(sys.executable, str(WRITER), str(db_path), str(seed),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    acks = 0
    try:
        first = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        assert first == b"ready\n", first + await proc.stderr.read()
        while acks < acks_before_kill:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
            assert line == b"ack\n", line + await proc.stderr.read()
            acks += 1
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return acks


async def test_summaries_survive_sigkill_in_step_with_their_events(tmp_path):
    db_path = tmp_path / "metrics-crash.db"
    rng = random.Random(18)
    for round_number in range(4):
        await run_and_kill(db_path, seed=round_number, acks_before_kill=rng.randint(5, 80))
        store = SqliteStore(db_path)
        await store.open()
        try:
            assert await store.integrity_check() == ["ok"]
            assert await store.incidents_without_summary() == []
            rows = await store.metrics_rows("crash", since=0)
            assert rows
            for row in rows:
                incident = await store.get_incident(row.incident_id)
                summary = summarize(incident.created_at, await store.timeline(row.incident_id))
                assert await store.incident_summary(row.incident_id) == summary
                assert row.resolve_ms == summary.resolve_ms
                assert (incident.status.value == "ended") == (not summary.ongoing)
        finally:
            await store.close()

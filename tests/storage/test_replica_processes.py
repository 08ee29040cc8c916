"""Several processes on one SQLite file (replicas sharing a database): every due job is claimed by
exactly one of them, and a lease is held by exactly one at a time (WAL, BEGIN IMMEDIATE, busy timeout)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from storage.sqlite import SqliteStore

from .builders import T0

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 3
JOBS = 150

WORKER = """
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
from storage.sqlite import SqliteStore

async def main(path, name, t0):
    store = SqliteStore(path)
    await store.open()
    claimed, leases = [], []
    try:
        while True:
            jobs = await store.claim_due_jobs(t0, name, lease_ms=10**9, limit=4)
            if not jobs:
                break
            claimed.extend(job.id for job in jobs)
        for round_ in range(40):  # each round: a fresh moment at which the last lease has expired
            lease = await store.acquire_lease("websocket", name, now=t0 + round_ * 1000, ttl_ms=1000)
            if lease is not None:
                leases.append([round_, lease.epoch])
    finally:
        await store.close()
    print(json.dumps({"claimed": claimed, "leases": leases}))

asyncio.run(main(sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


async def test_processes_on_one_file_claim_each_job_once_and_share_one_lease(tmp_path):
    path = tmp_path / "shared.db"
    store = SqliteStore(path)
    await store.open()
    for n in range(JOBS):
        await store.schedule_job("update_reminder", f"k{n}", due_at=T0, now=T0)
    await store.close()
    workers = [await asyncio.create_subprocess_exec(sys.executable, "-c", WORKER, str(ROOT), str(path), f"p{i}",
                                                    str(T0), stdout=asyncio.subprocess.PIPE)
               for i in range(PROCESSES)]
    outputs = [json.loads((await asyncio.wait_for(worker.communicate(), 120))[0]) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers)
    claimed = [job for output in outputs for job in output["claimed"]]
    assert len(claimed) == JOBS and len(set(claimed)) == JOBS  # every job once, none twice
    # A lease round is won by at most one process; whoever takes a round takes it with a new epoch.
    by_round: dict[int, list[int]] = {}
    for output in outputs:
        for round_, epoch in output["leases"]:
            by_round.setdefault(round_, []).append(epoch)
    assert all(len(epochs) == 1 for epochs in by_round.values()), by_round
    epochs = [epochs[0] for _, epochs in sorted(by_round.items())]
    assert epochs == sorted(set(epochs))

"""SIGKILL-test helper: a bot process's scheduler on an SQLite file, killed at a chosen point.

Usage: python sched_worker.py DB_PATH LOG_PATH NOW_MS

Runs a :class:`Scheduler` (one job at a time, simulated clock at NOW_MS) whose handler delivers a
reminder by appending ``<job id> <key>`` to LOG_PATH, the delivery log; its delivery check looks
for the job id there (the job id is the idempotency key). When every due job is settled it
prints ``settled`` and exits.

``SCHED_KILL_AT`` (``before_claim``, ``after_claim``, ``after_begin``, ``after_send``) and
``SCHED_KILL_KEY`` make the process SIGKILL itself at that point of the job with that key:
before its claim is written, after the claim is committed, after its delivery was begun in the
store, or after the reminder was delivered (before the job is completed).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from services.scheduler import Firing, ManualClock, Scheduler
from storage import Job, JobState
from storage.sqlite import SqliteStore

KIND = "update_reminder"
LEASE_MS = 60_000
KILL_AT = os.environ.get("SCHED_KILL_AT", "")
KILL_KEY = os.environ.get("SCHED_KILL_KEY", "")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillingStore(SqliteStore):
    """The SQLite store, with the kill points around the scheduler's store calls."""

    async def claim_due_jobs(self, now, owner, **kwargs):
        if KILL_AT == "before_claim":
            due = [j for j in await self.list_jobs(states={JobState.PENDING}) if j.due_at <= now]
            if due and due[0].key == KILL_KEY:  # the claim about to be made takes it (claim order)
                die()
        jobs = await super().claim_due_jobs(now, owner, **kwargs)
        if KILL_AT == "after_claim" and any(j.key == KILL_KEY for j in jobs):
            die()
        return jobs

    async def begin_job_delivery(self, job_id, token, *, now):
        begun = await super().begin_job_delivery(job_id, token, now=now)
        if KILL_AT == "after_begin" and begun and (await self.get_job(job_id)).key == KILL_KEY:
            die()
        return begun


async def main(db_path: str, log_path: str, now_ms: int) -> None:
    log = Path(log_path)

    async def deliver(firing: Firing) -> None:
        # One O_APPEND write: in the kernel before the process can be killed after it.
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{firing.job.id} {firing.job.key}\n".encode())
        finally:
            os.close(fd)
        if KILL_AT == "after_send" and firing.job.key == KILL_KEY:
            die()

    async def delivered(job: Job) -> bool:
        return log.exists() and any(line.split()[0] == job.id for line in log.read_text().splitlines())

    store = KillingStore(db_path)
    await store.open()
    scheduler = Scheduler(store, clock=ManualClock(now_ms), concurrency=1, lease_ms=LEASE_MS)
    scheduler.register(KIND, deliver, delivered=delivered)
    await scheduler.start()
    await asyncio.wait_for(scheduler.settle(), timeout=60)
    await scheduler.stop()
    await store.close()
    print("settled", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))

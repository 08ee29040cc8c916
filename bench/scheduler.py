"""The scheduler: firing lag of 1,000 reminders and the idle CPU of a process holding 1,000 jobs.

python -m bench.scheduler [--jobs 1000] [--spread 5] [--idle-seconds 20]

Lag: 1,000 jobs on an SQLite file come due over ``--spread`` seconds (real time, the
production store settings); each handler records how long after its due time it ran (goal:
p99 < 1 s). Idle: a child process opens a store holding 1,000 pending jobs due in an hour and
runs a scheduler; its CPU is measured over ``--idle-seconds`` (goal: < 0.5 % of one core).
Prints one human line and one line of key=value pairs for each.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import cpu_seconds
from services.scheduler import Firing, Scheduler, SystemClock
from storage.sqlite import SqliteStore

KIND = "update_reminder"
HOUR_MS = 3_600_000


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def firing_lag(jobs: int, spread_s: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        await store.open()
        clock = SystemClock()
        lags: list[float] = []
        all_fired = asyncio.Event()

        async def handler(firing: Firing) -> None:
            lags.append(clock.now_ms() - firing.job.due_at)
            if len(lags) == jobs:
                all_fired.set()

        scheduler = Scheduler(store, clock=clock)
        scheduler.register(KIND, handler)
        start = clock.now_ms() + 1000  # scheduled first, due from a second later
        for n in range(jobs):
            await scheduler.store.schedule_job(KIND, f"incident-{n}", due_at=start + int(n * spread_s * 1000 / jobs),
                                               now=clock.now_ms(), payload={"incident_id": f"incident-{n}"})
        await scheduler.start()
        try:
            await asyncio.wait_for(all_fired.wait(), timeout=spread_s + 120)
        finally:
            await scheduler.stop()
            await store.close()
    p50, p99, worst = percentile(lags, 0.50), percentile(lags, 0.99), max(lags)
    print(f"{jobs} jobs due over {spread_s:.0f} s: firing lag p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {worst:.0f} ms"
          f" (goal p99 < 1000 ms); {scheduler.stats.wakeups} wake-ups")
    print(f"lag_jobs={jobs} lag_p50_ms={p50:.0f} lag_p99_ms={p99:.0f} lag_max_ms={worst:.0f}"
          f" wakeups={scheduler.stats.wakeups}")


async def hold_jobs(db_path: str, jobs: int) -> None:
    """The child: a store holding ``jobs`` pending jobs and a running scheduler, until killed."""
    store = SqliteStore(db_path)
    await store.open()
    now = int(time.time() * 1000)
    for n in range(jobs):
        await store.schedule_job(KIND, f"incident-{n}", due_at=now + HOUR_MS + n * 1000, now=now)

    async def handler(firing: Firing) -> None:
        pass

    scheduler = Scheduler(store)
    scheduler.register(KIND, handler)
    await scheduler.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def idle_cpu(jobs: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.scheduler", "--hold", str(Path(tmp) / "idle.db"), "--jobs", str(jobs),
            stdout=asyncio.subprocess.PIPE)
        try:
            assert proc.stdout is not None
            assert await asyncio.wait_for(proc.stdout.readline(), timeout=120) == b"ready\n"
            await asyncio.sleep(1.0)  # let start-up settle before measuring
            cpu_before, wall_before = cpu_seconds(proc.pid), time.monotonic()
            await asyncio.sleep(seconds)
            cpu_used, wall = cpu_seconds(proc.pid) - cpu_before, time.monotonic() - wall_before
        finally:
            proc.kill()
            await proc.wait()
    percent = 100.0 * cpu_used / wall
    print(f"idle process holding {jobs} pending jobs over {wall:.1f} s: {cpu_used * 1000:.0f} ms CPU = "
          f"{percent:.3f} % of one core (goal < 0.5 %)")
    print(f"idle_jobs={jobs} idle_cpu_percent={percent:.3f} idle_cpu_ms={cpu_used * 1000:.0f} seconds={wall:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=5.0, help="seconds over which the jobs come due")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--hold", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold:
        asyncio.run(hold_jobs(args.hold, args.jobs))
        return
    asyncio.run(firing_lag(args.jobs, args.spread))
    asyncio.run(idle_cpu(args.jobs, args.idle_seconds))


if __name__ == "__main__":
    main()

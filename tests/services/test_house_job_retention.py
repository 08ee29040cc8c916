"""The scheduler prunes finished jobs past their retention, on its own cadence and in bounded
batches (services/scheduler.py; simulated time: ManualClock)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.scheduler import DAY_MS, ManualClock, Scheduler
from storage import JobState, Store, create_store
from tests.storage.builders import T0

HOUR = 3_600_000
MINUTE = 60_000
KIND = "update_reminder"


@pytest.fixture(params=["memory", "sqlite"])
async def store(request, tmp_path):
    url = f"memory://{uuid.uuid4().hex}" if request.param == "memory" else f"sqlite:///{tmp_path / 'jobs.db'}"
    opened = create_store(url)
    await opened.open()
    yield opened
    await opened.close()


async def finished(store: Store, key: str, state: JobState, at: int) -> str:
    job = await store.schedule_job("finished_kind", key, due_at=at, now=at)
    if state is JobState.CANCELLED:
        await store.cancel_jobs(now=at, job_id=job.id)
        return job.id
    [claimed] = await store.claim_due_jobs(at, "old-bot", lease_ms=MINUTE, limit=1, kinds={"finished_kind"})
    if state is JobState.DONE:
        assert await store.complete_job(job.id, claimed.token, now=at)
    else:
        assert await store.finish_job(job.id, claimed.token, now=at, state=state, error="gave up after 12 attempts")
    return job.id


async def settle(scheduler: Scheduler) -> None:
    await asyncio.wait_for(scheduler.settle(), timeout=10)


async def advance(scheduler: Scheduler, clock: ManualClock, ms: int) -> None:
    clock.advance(ms)
    await settle(scheduler)


async def ids(store: Store) -> set[str]:
    return {job.id for job in await store.list_jobs()}


async def test_finished_jobs_go_after_their_retention_failed_ones_later(store):
    clock = ManualClock(T0)
    done = await finished(store, "d", JobState.DONE, T0)
    cancelled = await finished(store, "c", JobState.CANCELLED, T0)
    failed = await finished(store, "f", JobState.FAILED, T0)
    recent = await finished(store, "r", JobState.DONE, T0 + 6 * DAY_MS)
    pending = await store.schedule_job(KIND, "later", due_at=T0 + 90 * DAY_MS, now=T0)
    scheduler = Scheduler(store, clock=clock, owner="bot", keep_finished_ms=7 * DAY_MS, keep_failed_ms=30 * DAY_MS,
                          prune_every_ms=HOUR)

    async def nothing(firing) -> None:
        return None

    scheduler.register(KIND, nothing)
    await scheduler.start()
    try:
        await settle(scheduler)
        assert await ids(store) == {done, cancelled, failed, recent, pending.id}  # nothing is old yet
        await advance(scheduler, clock, 7 * DAY_MS - 30 * MINUTE)  # the loop's pass at T0+7d-30m: not yet 7 days
        assert await ids(store) == {done, cancelled, failed, recent, pending.id}
        await advance(scheduler, clock, 31 * MINUTE)  # 7 days are over, but the next pass is only due in an hour
        assert await ids(store) == {done, cancelled, failed, recent, pending.id}
        for _ in range(6):  # the loop wakes every ten minutes: the pass comes with one of those wake-ups
            await advance(scheduler, clock, 10 * MINUTE)
        assert await ids(store) == {failed, recent, pending.id}
        assert scheduler.stats.pruned == 2
        await advance(scheduler, clock, 6 * DAY_MS)
        for _ in range(6):
            await advance(scheduler, clock, 10 * MINUTE)
        assert await ids(store) == {failed, pending.id}  # the recent one is 7 days old now; failed: kept 30
        clock.set(T0 + 30 * DAY_MS + HOUR)
        await settle(scheduler)
        for _ in range(6):
            await advance(scheduler, clock, 10 * MINUTE)
        assert await ids(store) == {pending.id}  # a live job is never pruned
        assert scheduler.stats.pruned == 4
    finally:
        await scheduler.stop()


async def test_a_backlog_is_pruned_a_bounded_batch_at_a_time(store):
    clock = ManualClock(T0 + 8 * DAY_MS)
    old = [await finished(store, f"d{n}", JobState.DONE, T0 + n) for n in range(7)]
    scheduler = Scheduler(store, clock=clock, owner="bot", prune_batch=3, prune_backlog_ms=1000)
    await scheduler.start()
    try:
        await settle(scheduler)
        assert await ids(store) == set(old[3:])  # the oldest batch first
        assert clock.sleepers == [clock.now_ms() + 1000]  # full batch: back in a second, not in an hour
        await advance(scheduler, clock, 1000)
        assert await ids(store) == {old[6]}
        await advance(scheduler, clock, 1000)
        assert await ids(store) == set()
        assert clock.sleepers == [clock.now_ms() + scheduler.max_idle_ms]  # done: no extra wake-up
        wakeups = scheduler.stats.wakeups
        await advance(scheduler, clock, 1000)
        assert scheduler.stats.wakeups == wakeups
    finally:
        await scheduler.stop()


async def test_a_failing_prune_does_not_stop_the_jobs(store):
    clock = ManualClock(T0)
    fired: list[str] = []

    async def record(firing) -> None:
        fired.append(firing.job.key)

    async def broken(before: int, **kwargs) -> int:
        raise OSError("disk")

    store.prune_jobs = broken  # type: ignore[method-assign]
    scheduler = Scheduler(store, clock=clock, owner="bot")
    scheduler.register(KIND, record)
    await scheduler.start()
    try:
        await scheduler.schedule(KIND, "i1", due_at=T0 + MINUTE)
        await advance(scheduler, clock, MINUTE)
        assert fired == ["i1"] and scheduler.stats.errors == 0
    finally:
        await scheduler.stop()


def test_retention_must_be_positive():
    with pytest.raises(ValueError):
        Scheduler(create_store("memory://x"), keep_failed_ms=0)

"""Pruning finished jobs (the scheduler's retention, services/scheduler.py): by state, oldest first,
in bounded batches; live jobs are never touched — on every backend."""

from __future__ import annotations

import pytest

from storage import JobState, Store

NOW = 1_700_000_000_000
LEASE = 30_000


async def finish(store: Store, key: str, state: JobState, at: int) -> str:
    job = await store.schedule_job("k", key, due_at=NOW, now=NOW - 1000)
    if state is JobState.CANCELLED:
        assert await store.cancel_jobs(now=at, job_id=job.id) == 1
        return job.id
    [claimed] = await store.claim_due_jobs(NOW, "a", lease_ms=LEASE, limit=1, kinds={"k"})
    if state is JobState.DONE:
        assert await store.complete_job(job.id, claimed.token, now=at)
    else:
        assert await store.finish_job(job.id, claimed.token, now=at, state=state, error="gave up")
    return job.id


async def test_prune_by_state_oldest_first_in_batches(store):
    done = [await finish(store, f"d{n}", JobState.DONE, NOW + 10 - n) for n in range(5)]  # d4 is the oldest
    cancelled = await finish(store, "c", JobState.CANCELLED, NOW + 20)
    failed = await finish(store, "f", JobState.FAILED, NOW + 1)
    pending = await store.schedule_job("k", "p", due_at=NOW + 99, now=NOW)
    claimed = await store.schedule_job("k", "q", due_at=NOW, now=NOW)
    [held] = await store.claim_due_jobs(NOW + 50, "a", lease_ms=LEASE, limit=1, kinds={"k"})
    assert held.id == claimed.id

    everything = NOW + 1000
    assert await store.prune_jobs(everything, states=(JobState.DONE, JobState.CANCELLED), limit=2) == 2
    left = {j.id for j in await store.list_jobs()}
    assert done[4] not in left and done[3] not in left and done[2] in left  # the two oldest first
    assert await store.prune_jobs(everything, states=(JobState.DONE, JobState.CANCELLED), limit=0) == 0
    assert await store.prune_jobs(NOW + 9, states=(JobState.DONE, JobState.CANCELLED)) == 1  # d2 (NOW+8)
    assert await store.prune_jobs(everything, states=(JobState.DONE, JobState.CANCELLED), limit=10) == 3
    left = {j.id for j in await store.list_jobs()}
    assert left == {failed, pending.id, claimed.id}  # failed ones have their own retention
    assert cancelled not in left
    assert await store.prune_jobs(NOW + 1, states=(JobState.FAILED,)) == 0  # finished at NOW+1: not before
    assert await store.prune_jobs(everything, states=(JobState.FAILED,), limit=5) == 1
    assert await store.prune_jobs(everything) == 0
    assert {j.id for j in await store.list_jobs()} == {pending.id, claimed.id}  # live jobs stay


async def test_prune_refuses_live_states(store):
    with pytest.raises(ValueError):
        await store.prune_jobs(NOW, states=(JobState.PENDING,))
    assert await store.prune_jobs(NOW, states=()) == 0


@pytest.mark.backends("sqlite", reason="the query plan of SQLite's own partial index")
async def test_sqlite_prune_reads_the_finished_index(store):
    # INDEXED BY makes SQLite refuse the statement if jobs_finished could not serve it.
    await finish(store, "d", JobState.DONE, NOW)
    assert await store.prune_jobs(NOW + 1, states=(JobState.DONE,), limit=1) == 1

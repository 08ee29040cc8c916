"""Scheduled jobs in the store: schedule, claim, deliver, complete, retry, cancel — on every backend."""

from __future__ import annotations

import asyncio

import pytest

from storage import Job, JobState, Store
from storage.jobs import PAYLOAD_MAX_BYTES

NOW = 1_700_000_000_000
LEASE = 30_000


async def schedule(store: Store, key: str = "i1", *, due: int = NOW, kind: str = "update_reminder", **kw) -> Job:
    return await store.schedule_job(kind, key, due_at=due, now=NOW - 1000, **kw)


async def test_schedule_claim_complete(store):
    job = await schedule(store, payload={"incident": "i1"}, incident_id="i1")
    assert (job.state, job.attempts, job.token) == (JobState.PENDING, 0, None)
    assert await store.claim_due_jobs(NOW - 1, "a", lease_ms=LEASE, limit=10) == []  # not due yet

    [claimed] = await store.claim_due_jobs(NOW, "a", lease_ms=LEASE, limit=10)
    assert claimed.id == job.id and claimed.state is JobState.CLAIMED
    assert (claimed.claimed_by, claimed.attempts, claimed.lease_until) == ("a", 1, NOW + LEASE)
    assert claimed.token and not claimed.late and not claimed.maybe_delivered
    assert dict(claimed.payload) == {"incident": "i1"} and claimed.incident_id == "i1"
    assert await store.claim_due_jobs(NOW + 1, "b", lease_ms=LEASE, limit=10) == []  # held

    assert not await store.complete_job(job.id, "not-the-token", now=NOW + 2)
    assert await store.begin_job_delivery(job.id, claimed.token, now=NOW + 2)
    assert await store.complete_job(job.id, claimed.token, now=NOW + 3)
    done = await store.get_job(job.id)
    assert done is not None
    assert (done.state, done.fired_at, done.token, done.delivery_started_at) == (JobState.DONE, NOW + 3, None, NOW + 2)
    assert not await store.complete_job(job.id, claimed.token, now=NOW + 4)  # only once
    assert await store.claim_due_jobs(NOW + LEASE * 2, "b", lease_ms=LEASE, limit=10) == []


async def test_claim_order_limit_and_kinds(store):
    for n, due in enumerate([NOW + 3, NOW + 1, NOW + 2, NOW + 50]):
        await schedule(store, f"k{n}", due=due)
    await schedule(store, "other", kind="something_else", due=NOW)
    first = await store.claim_due_jobs(NOW + 10, "a", lease_ms=LEASE, limit=2, kinds={"update_reminder"})
    assert [j.key for j in first] == ["k1", "k2"]
    rest = await store.claim_due_jobs(NOW + 10, "a", lease_ms=LEASE, limit=10, kinds={"update_reminder"})
    assert [j.key for j in rest] == ["k0"]
    assert await store.claim_due_jobs(NOW + 10, "a", lease_ms=LEASE, limit=10, kinds=()) == []
    assert await store.next_job_time({"update_reminder"}) == NOW + 50
    assert await store.next_job_time({"something_else"}) == NOW
    assert await store.next_job_time(()) is None


async def test_dedupe_key_moves_the_pending_job(store):
    first = await schedule(store, "incident-1", due=NOW + 60_000)
    second = await schedule(store, "incident-1", due=NOW + 120_000, payload={"n": 2})
    pending = await store.list_jobs(kind="update_reminder", key="incident-1", states={JobState.PENDING})
    assert [j.id for j in pending] == [second.id]
    old = await store.get_job(first.id)
    assert old is not None and old.state is JobState.CANCELLED
    assert await store.next_job_time() == NOW + 120_000
    # A claimed (in-flight) job of the key does not block scheduling its successor...
    [claimed] = await store.claim_due_jobs(NOW + 120_000, "a", lease_ms=LEASE, limit=5)
    third = await schedule(store, "incident-1", due=NOW + 180_000)
    # ...and if the in-flight one is given back for a retry, the newer schedule wins.
    assert await store.retry_job(claimed.id, claimed.token, due_at=NOW + 121_000, now=NOW + 120_001, error="x")
    retried = await store.get_job(claimed.id)
    assert retried is not None and retried.state is JobState.CANCELLED
    live = await store.list_jobs(key="incident-1", states={JobState.PENDING, JobState.CLAIMED})
    assert [j.id for j in live] == [third.id]


async def test_retry_keeps_attempts_and_clears_the_marker(store):
    await schedule(store)
    [claimed] = await store.claim_due_jobs(NOW, "a", lease_ms=LEASE, limit=1)
    assert await store.begin_job_delivery(claimed.id, claimed.token, now=NOW)
    assert await store.retry_job(claimed.id, claimed.token, due_at=NOW + 5000, now=NOW + 1, error="boom")
    assert not await store.retry_job(claimed.id, claimed.token, due_at=NOW + 5000, now=NOW + 1)  # token spent
    back = await store.get_job(claimed.id)
    assert back is not None
    assert (back.state, back.due_at, back.attempts, back.last_error) == (JobState.PENDING, NOW + 5000, 1, "boom")
    assert not back.maybe_delivered  # the attempt ended (with an error): its outcome is not unknown
    [again] = await store.claim_due_jobs(NOW + 5000, "b", lease_ms=LEASE, limit=1)
    assert (again.attempts, again.maybe_delivered, again.claimed_by) == (2, False, "b")
    assert again.token != claimed.token


async def test_expired_lease_is_claimable_again_and_says_whether_delivery_began(store):
    quiet = await schedule(store, "quiet")
    begun = await schedule(store, "begun")
    claims = {j.key: j for j in await store.claim_due_jobs(NOW, "dead", lease_ms=LEASE, limit=5)}
    assert await store.begin_job_delivery(begun.id, claims["begun"].token, now=NOW + 1)
    assert await store.next_job_time() == NOW + LEASE
    assert await store.next_job_time(not_claimed_by="dead") is None  # the holder settles its own claims
    assert await store.next_job_time(not_claimed_by="alive") == NOW + LEASE
    assert await store.claim_due_jobs(NOW + LEASE - 1, "alive", lease_ms=LEASE, limit=5) == []
    # After the lease, a dead holder's delivery may not begin any more.
    assert not await store.begin_job_delivery(quiet.id, claims["quiet"].token, now=NOW + LEASE)
    again = {j.key: j for j in await store.claim_due_jobs(NOW + LEASE, "alive", lease_ms=LEASE, limit=5)}
    assert set(again) == {"quiet", "begun"}
    assert not again["quiet"].maybe_delivered  # known not to have happened: safe to fire
    assert again["begun"].maybe_delivered  # may have happened: the handler's delivery check decides
    # The old holder's token is dead: it can neither complete nor retry.
    assert not await store.complete_job(quiet.id, claims["quiet"].token, now=NOW + LEASE + 1)
    assert not await store.retry_job(begun.id, claims["begun"].token, due_at=NOW, now=NOW + LEASE + 1)
    assert await store.complete_job(quiet.id, again["quiet"].token, now=NOW + LEASE + 1)


async def test_late_flag(store):
    on_time = await schedule(store, "on-time", due=NOW)
    overdue = await schedule(store, "overdue", due=NOW - 3_600_000)
    claimed = {j.id: j for j in await store.claim_due_jobs(NOW + 5, "a", lease_ms=LEASE, limit=5, late_ms=60_000)}
    assert not claimed[on_time.id].late and claimed[overdue.id].late


async def test_cancel_by_id_key_and_incident(store):
    a = await schedule(store, "a", incident_id="i1", due=NOW - 1)  # claimed first
    b = await schedule(store, "b", incident_id="i1")
    c = await schedule(store, "c", incident_id="i2")
    d = await schedule(store, "d", kind="other")
    assert await store.cancel_jobs(now=NOW, job_id=c.id) == 1
    assert await store.cancel_jobs(now=NOW, job_id=c.id) == 0
    assert await store.cancel_jobs(now=NOW, kind="other", key="d") == 1
    [held] = [j for j in await store.claim_due_jobs(NOW, "a", lease_ms=LEASE, limit=1) if j.id == a.id]
    assert await store.cancel_jobs(now=NOW, incident_id="i1") == 2  # pending and claimed
    assert not await store.begin_job_delivery(a.id, held.token, now=NOW + 1)  # the holder may not send now
    assert not await store.complete_job(a.id, held.token, now=NOW + 1)
    states = {j.id: j.state for j in await store.list_jobs()}
    assert states == {a.id: JobState.CANCELLED, b.id: JobState.CANCELLED, c.id: JobState.CANCELLED,
                      d.id: JobState.CANCELLED}
    assert await store.next_job_time() is None
    with pytest.raises(ValueError):
        await store.cancel_jobs(now=NOW, job_id=a.id, incident_id="i1")
    with pytest.raises(ValueError):
        await store.cancel_jobs(now=NOW, kind="other")


async def test_finish_as_failed_and_prune(store):
    job = await schedule(store)
    [claimed] = await store.claim_due_jobs(NOW, "a", lease_ms=LEASE, limit=1)
    assert await store.finish_job(job.id, claimed.token, now=NOW + 1, state=JobState.FAILED, error="gave up")
    failed = await store.get_job(job.id)
    assert failed is not None and (failed.state, failed.fired_at, failed.last_error) == (JobState.FAILED, None, "gave up")
    pending = await schedule(store, "other")
    assert await store.prune_jobs(NOW + 1) == 0
    assert await store.prune_jobs(NOW + 2) == 1
    assert [j.id for j in await store.list_jobs()] == [pending.id]


async def test_payload_is_small_json_of_ids(store):
    with pytest.raises(ValueError):
        await schedule(store, payload={"text": "x" * PAYLOAD_MAX_BYTES})
    job = await schedule(store, payload={"ids": ["a", "b"]})
    assert dict(job.payload) == {"ids": ["a", "b"]}
    job.payload["ids"].append("c")  # a copy: the stored payload does not change
    stored = await store.get_job(job.id)
    assert stored is not None and dict(stored.payload) == {"ids": ["a", "b"]}


async def test_jobs_survive_reopening(store_factory):
    first = store_factory()
    await first.open()
    job = await schedule(first, due=NOW + 10)
    reopened = store_factory()
    await reopened.open()  # memory://NAME: shared while one is open; SQLite: the file
    await first.close()
    try:
        stored = await reopened.get_job(job.id)
        assert stored is not None and stored.state is JobState.PENDING
    finally:
        await reopened.close()


async def test_two_stores_racing_never_claim_a_job_twice(store_factory):
    """Two "processes" (two store instances on one database), many claimers each: every due job
    is claimed exactly once, and only its holder can complete it."""
    one, two = store_factory(), store_factory()
    await one.open()
    await two.open()
    try:
        jobs = [await schedule(one, f"k{n}", due=NOW + n % 7) for n in range(120)]
        # The second store sees the first one's jobs and claims (which of them wins a race is timing).
        [early] = await two.claim_due_jobs(NOW + 10, "two-early", lease_ms=LEASE, limit=1)
        claims: list[tuple[str, Job]] = [("two-early", early)]

        async def claimer(store: Store, owner: str) -> None:
            for _ in range(40):
                for job in await store.claim_due_jobs(NOW + 10, owner, lease_ms=LEASE, limit=3):
                    claims.append((owner, job))
                await asyncio.sleep(0)

        await asyncio.gather(*(claimer(store, f"{name}-{n}") for name, store in (("one", one), ("two", two))
                               for n in range(6)))
        claimed_ids = [job.id for _, job in claims]
        assert sorted(claimed_ids) == sorted(job.id for job in jobs)  # all claimed, none twice
        # Each job completes once, through its holder's token; the other store's try fails.
        results = await asyncio.gather(*(
            store.complete_job(job.id, job.token or "", now=NOW + 11)
            for _, job in claims for store in (one, two)))
        assert sum(results) == len(jobs)  # one store's try per job wins: both see the same database...
        assert all(j.state is JobState.DONE for j in await two.list_jobs())
        # ...and a second completion of the same token does nothing.
        assert not any(await asyncio.gather(*(one.complete_job(j.id, j.token or "", now=NOW) for _, j in claims)))
    finally:
        await one.close()
        await two.close()

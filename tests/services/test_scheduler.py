"""The scheduler on the memory store with a simulated clock: nothing here waits for real time."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest

from domain import incidents as ops
from services.scheduler import Firing, ManualClock, Scheduler
from storage import Job, JobState, Store, create_store
from tests.storage.builders import T0, incident

MINUTE = 60_000
KIND = "update_reminder"


@pytest.fixture
def db_url() -> str:
    return f"memory://{uuid.uuid4().hex}"


@pytest.fixture
async def store(db_url):
    opened = create_store(db_url)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


class Recorder:
    """A handler that records every firing (and can be told to fail)."""

    def __init__(self, fail_times: int = 0) -> None:
        self.fired: list[Firing] = []
        self.fail_times = fail_times

    async def __call__(self, firing: Firing) -> None:
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("Mattermost is down")
        self.fired.append(firing)

    @property
    def keys(self) -> list[str]:
        return [f.job.key for f in self.fired]


async def running(store: Store, clock: ManualClock, handler=None, **kwargs) -> tuple[Scheduler, Recorder]:
    recorder = handler or Recorder()
    scheduler = Scheduler(store, clock=clock, owner=kwargs.pop("owner", "test"), **kwargs)
    scheduler.register(KIND, recorder)
    await scheduler.start()
    await settle(scheduler)
    return scheduler, recorder


async def settle(scheduler: Scheduler) -> None:
    await asyncio.wait_for(scheduler.settle(), timeout=10)


async def advance(scheduler: Scheduler, clock: ManualClock, ms: int) -> None:
    clock.advance(ms)
    await settle(scheduler)


async def test_fires_at_due_time_and_sleeps_in_between_without_waking(store, clock):
    scheduler, fired = await running(store, clock)
    try:
        await scheduler.schedule(KIND, "i1", due_at=T0 + 9 * MINUTE)
        await settle(scheduler)
        assert clock.sleepers == [T0 + 9 * MINUTE]  # asleep until exactly the job's time
        wakeups = scheduler.stats.wakeups
        for _ in range(8):
            await advance(scheduler, clock, MINUTE)
        assert scheduler.stats.wakeups == wakeups  # not one wake-up in eight simulated minutes
        assert fired.keys == []
        await advance(scheduler, clock, MINUTE - 1)
        assert fired.keys == [] and scheduler.stats.wakeups == wakeups
        await advance(scheduler, clock, 1)
        assert fired.keys == ["i1"] and not fired.fired[0].late
        assert scheduler.stats.wakeups == wakeups + 1
        [job] = await store.list_jobs()
        assert (job.state, job.fired_at) == (JobState.DONE, T0 + 9 * MINUTE)
        # Nothing left: it sleeps for the idle bound only (a safety net for other processes' jobs).
        assert clock.sleepers == [T0 + 9 * MINUTE + scheduler.max_idle_ms]
    finally:
        await scheduler.stop()


async def test_scheduling_an_earlier_job_wakes_the_loop_and_a_later_one_does_not(store, clock):
    scheduler, fired = await running(store, clock)
    try:
        await scheduler.schedule(KIND, "late", due_at=T0 + 5 * MINUTE)
        await settle(scheduler)
        wakeups = scheduler.stats.wakeups
        await scheduler.schedule(KIND, "later", due_at=T0 + 7 * MINUTE)
        await settle(scheduler)
        assert scheduler.stats.wakeups == wakeups  # later than the current wake-up: no need to look
        await scheduler.schedule(KIND, "soon", due_at=T0 + MINUTE)
        await settle(scheduler)
        assert scheduler.stats.wakeups == wakeups + 1 and clock.sleepers == [T0 + MINUTE]
        await advance(scheduler, clock, 5 * MINUTE)
        assert fired.keys == ["soon", "late"]
        await advance(scheduler, clock, 2 * MINUTE)
        assert fired.keys == ["soon", "late", "later"]
    finally:
        await scheduler.stop()


async def test_dedupe_key_moves_the_reminder(store, clock):
    scheduler, fired = await running(store, clock)
    try:
        await scheduler.schedule(KIND, "incident-1", due_at=T0 + MINUTE, payload={"n": 1})
        await scheduler.schedule(KIND, "incident-1", due_at=T0 + 3 * MINUTE, payload={"n": 2})
        await advance(scheduler, clock, 2 * MINUTE)
        assert fired.keys == []
        await advance(scheduler, clock, MINUTE)
        assert [dict(f.job.payload) for f in fired.fired] == [{"n": 2}]
    finally:
        await scheduler.stop()


async def test_catch_up_fires_once_at_start_marked_late(store, clock):
    # Scheduled by an earlier run of the bot; it was down when they came due.
    await store.schedule_job(KIND, "missed", due_at=T0 - 2 * 3_600_000, now=T0 - 3 * 3_600_000)
    await store.schedule_job(KIND, "just-due", due_at=T0, now=T0 - MINUTE)
    await store.schedule_job(KIND, "future", due_at=T0 + MINUTE, now=T0 - MINUTE)
    scheduler, fired = await running(store, clock)
    try:
        assert sorted((f.job.key, f.late) for f in fired.fired) == [("just-due", False), ("missed", True)]
        await advance(scheduler, clock, 10 * MINUTE)
        assert Counter(fired.keys) == {"missed": 1, "just-due": 1, "future": 1}
        missed = await store.list_jobs(key="missed")
        assert missed[0].late and missed[0].state is JobState.DONE
    finally:
        await scheduler.stop()


async def test_a_failing_handler_is_retried_with_backoff_then_given_up_and_the_loop_survives(store, clock):
    flaky = Recorder(fail_times=2)
    scheduler, _ = await running(store, clock, handler=flaky, backoff_ms=10_000, max_attempts=3)
    try:
        job = await scheduler.schedule(KIND, "flaky", due_at=T0)
        await settle(scheduler)
        assert flaky.fired == [] and scheduler.stats.retried == 1
        stored = await store.get_job(job.id)
        assert stored is not None and (stored.state, stored.due_at) == (JobState.PENDING, T0 + 10_000)
        assert stored.last_error == "RuntimeError: Mattermost is down"
        await advance(scheduler, clock, 10_000)
        assert scheduler.stats.retried == 2  # second failure: the backoff doubles
        stored = await store.get_job(job.id)
        assert stored is not None and stored.due_at == T0 + 10_000 + 20_000
        await advance(scheduler, clock, 20_000)
        assert flaky.keys == ["flaky"] and flaky.fired[0].attempt == 3

        flaky.fail_times = 10
        doomed = await scheduler.schedule(KIND, "doomed", due_at=clock.now_ms())
        for _ in range(5):
            await advance(scheduler, clock, 60_000)
        stored = await store.get_job(doomed.id)
        assert stored is not None and (stored.state, stored.attempts) == (JobState.FAILED, 3)
        assert scheduler.stats.failed == 1
        # The loop is still alive and firing.
        flaky.fail_times = 0
        await scheduler.schedule(KIND, "after", due_at=clock.now_ms() + 1)
        await advance(scheduler, clock, 1)
        assert flaky.keys == ["flaky", "after"]
    finally:
        await scheduler.stop()


async def test_a_broken_store_does_not_kill_the_loop(store, clock):
    scheduler, fired = await running(store, clock, error_pause_ms=5_000)
    original = store.claim_due_jobs
    calls = 0

    async def broken(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk I/O error")
        return await original(*args, **kwargs)

    store.claim_due_jobs = broken  # type: ignore[method-assign]
    try:
        await scheduler.schedule(KIND, "k", due_at=T0)
        await settle(scheduler)
        assert scheduler.stats.errors == 1 and fired.keys == []
        await advance(scheduler, clock, 5_000)
        assert fired.keys == ["k"]
    finally:
        await scheduler.stop()


async def test_concurrency_is_bounded(store, clock):
    release = asyncio.Event()
    running_now = 0
    most = 0
    done: list[str] = []

    async def slow(firing: Firing) -> None:
        nonlocal running_now, most
        running_now += 1
        most = max(most, running_now)
        await release.wait()
        running_now -= 1
        done.append(firing.job.key)

    scheduler = Scheduler(store, clock=clock, owner="t", concurrency=3)
    scheduler.register(KIND, slow)
    for n in range(10):
        await store.schedule_job(KIND, f"k{n}", due_at=T0, now=T0)
    await scheduler.start()
    try:
        for _ in range(50):
            await asyncio.sleep(0)
        assert running_now == 3
        release.set()
        await settle(scheduler)
        assert most == 3 and sorted(done) == sorted(f"k{n}" for n in range(10))
    finally:
        await scheduler.stop()


async def test_ending_an_incident_cancels_its_jobs(store, clock):
    inc, events = incident(now=T0)
    await store.create_incident(inc, events)
    other, other_events = incident(now=T0)
    await store.create_incident(other, other_events)
    scheduler, fired = await running(store, clock)
    try:
        await scheduler.schedule(KIND, inc.id, due_at=T0 + MINUTE, incident_id=inc.id)
        await scheduler.schedule("follow_up", inc.id, due_at=T0 + 2 * MINUTE, incident_id=inc.id)
        await scheduler.schedule(KIND, other.id, due_at=T0 + MINUTE, incident_id=other.id)
        ended, _ = await store.mutate_incident(inc.id, lambda i: ops.end_incident(i, "alice", T0 + 1))
        scheduler.incident_changed(ended)  # what the card updater tells its listeners
        await settle(scheduler)
        assert {j.kind: j.state for j in await store.list_jobs(incident_id=inc.id)} == {
            KIND: JobState.CANCELLED, "follow_up": JobState.CANCELLED}
        await advance(scheduler, clock, 5 * MINUTE)
        assert fired.keys == [other.id]
    finally:
        await scheduler.stop()


async def test_a_job_of_an_ended_or_deleted_incident_is_cancelled_when_due(store, clock):
    """Even when nobody told the scheduler (another process ended it), nothing is sent."""
    ended_inc, events = incident(now=T0)
    await store.create_incident(ended_inc, events)
    await store.mutate_incident(ended_inc.id, lambda i: ops.end_incident(i, "alice", T0 + 1))
    scheduler, fired = await running(store, clock)
    try:
        job = await scheduler.schedule(KIND, "ended", due_at=T0 + MINUTE, incident_id=ended_inc.id)
        gone = await scheduler.schedule(KIND, "gone", due_at=T0 + MINUTE, incident_id="no-such-incident")
        await advance(scheduler, clock, MINUTE)
        assert fired.keys == [] and scheduler.stats.cancelled == 2
        for job_id in (job.id, gone.id):
            stored = await store.get_job(job_id)
            assert stored is not None and stored.state is JobState.CANCELLED
    finally:
        await scheduler.stop()


async def test_cancel_by_id_and_key(store, clock):
    scheduler, fired = await running(store, clock)
    try:
        a = await scheduler.schedule(KIND, "a", due_at=T0 + MINUTE)
        await scheduler.schedule(KIND, "b", due_at=T0 + MINUTE)
        await scheduler.schedule(KIND, "c", due_at=T0 + MINUTE)
        assert await scheduler.cancel(a.id) == 1
        assert await scheduler.cancel_key(KIND, "b") == 1
        await advance(scheduler, clock, MINUTE)
        assert fired.keys == ["c"]
    finally:
        await scheduler.stop()


async def crashed_mid_delivery(store: Store, key: str) -> Job:
    """A job a dead process claimed and began delivering (it may or may not have sent)."""
    job = await store.schedule_job(KIND, key, due_at=T0, now=T0)
    [claimed] = [j for j in await store.claim_due_jobs(T0, "dead", lease_ms=MINUTE, limit=10) if j.id == job.id]
    assert await store.begin_job_delivery(job.id, claimed.token or "", now=T0)
    return job


@pytest.mark.parametrize("already_sent", [True, False])
async def test_after_a_crash_mid_delivery_the_delivery_check_decides(store, clock, already_sent):
    job = await crashed_mid_delivery(store, "k")
    checked: list[str] = []

    async def delivered(j: Job) -> bool:
        checked.append(j.id)
        return already_sent

    recorder = Recorder()
    scheduler = Scheduler(store, clock=clock, owner="alive", lease_ms=MINUTE)
    scheduler.register(KIND, recorder, delivered=delivered)
    await scheduler.start()
    try:
        await settle(scheduler)
        assert recorder.fired == [] and clock.sleepers == [T0 + MINUTE]  # the dead process's lease first
        await advance(scheduler, clock, MINUTE)
        assert checked == [job.id]
        assert recorder.keys == ([] if already_sent else ["k"])
        stored = await store.get_job(job.id)
        assert stored is not None and stored.state is JobState.DONE
    finally:
        await scheduler.stop()


async def test_without_a_delivery_check_an_uncertain_job_is_not_repeated(store, clock):
    job = await crashed_mid_delivery(store, "k")
    scheduler, fired = await running(store, clock, lease_ms=MINUTE)
    try:
        await advance(scheduler, clock, MINUTE)
        assert fired.keys == []
        stored = await store.get_job(job.id)
        assert stored is not None and stored.state is JobState.FAILED
    finally:
        await scheduler.stop()


async def test_a_claim_that_died_before_delivery_is_fired_after_its_lease(store, clock):
    job = await store.schedule_job(KIND, "k", due_at=T0, now=T0)
    await store.claim_due_jobs(T0, "dead", lease_ms=MINUTE, limit=1)  # then the process died
    scheduler, fired = await running(store, clock, lease_ms=MINUTE)
    try:
        assert fired.keys == []
        await advance(scheduler, clock, MINUTE)
        assert fired.keys == ["k"] and fired.fired[0].attempt == 2
        stored = await store.get_job(job.id)
        assert stored is not None and stored.state is JobState.DONE
    finally:
        await scheduler.stop()


async def test_two_schedulers_on_one_database_fire_each_job_once(db_url, clock):
    stores = [create_store(db_url), create_store(db_url)]
    for s in stores:
        await s.open()
    shared: list[tuple[str, str]] = []

    def handler_for(name: str):
        async def handler(firing: Firing) -> None:
            await asyncio.sleep(0)
            shared.append((name, firing.job.key))
        return handler

    schedulers = []
    for n, s in enumerate(stores):
        scheduler = Scheduler(s, clock=clock, owner=f"bot{n}", concurrency=4)
        scheduler.register(KIND, handler_for(f"bot{n}"))
        schedulers.append(scheduler)
    try:
        for n in range(200):
            await stores[n % 2].schedule_job(KIND, f"k{n}", due_at=T0 + (n % 10) * 1000, now=T0)
        for scheduler in schedulers:
            await scheduler.start()
        for _ in range(10):
            clock.advance(1000)
            for scheduler in schedulers:
                scheduler.wake()
            for scheduler in schedulers:
                await settle(scheduler)
        fired = Counter(key for _, key in shared)
        assert fired == Counter({f"k{n}": 1 for n in range(200)})
        assert {name for name, _ in shared} == {"bot0", "bot1"}
    finally:
        for scheduler in schedulers:
            await scheduler.stop()
        for s in stores:
            await s.close()

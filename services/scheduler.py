"""The scheduler: jobs kept in the store fire once, on time, across restarts and processes.

Guarantees and how they are kept (storage/jobs.py has the life of a job):

- **At most once, even with two bot processes on one database.** Due jobs are claimed in one
  store transaction with a fresh token and a lease; only the holder of the current token can
  begin, complete or retry a job. Before its handler runs, a job's delivery is begun in the
  store (``begin_job_delivery``): that is refused once the lease has expired or the job was
  cancelled, and a handler is cut off (cancelled) after half the lease, so a job whose lease
  another process may take over is never still being delivered by the first.
- **A crash never repeats a side effect blindly.** A process killed after the claim but before
  the delivery began leaves a job whose side effect is known not to have happened: when its
  lease expires it is claimed again and fired. A process killed after the delivery began leaves
  a job that *may* have been delivered (``maybe_delivered``): it is fired again only after the
  kind's ``delivered`` check (the job id is the idempotency key — e.g. a post carrying the job id
  in its props, or a store row written with the side effect) says it was not; a kind without
  such a check is marked failed instead (at most once wins over at least once).
- **Catch-up.** Jobs that came due while no bot was running are claimed at start, and marked
  ``late`` when claimed ``late_ms`` or more after their due time.
- **Ended incidents.** A job with an incident id is cancelled, not fired, when its incident has
  ended or is gone (kinds may opt out); :meth:`Scheduler.incident_changed` (a card listener)
  also cancels an ended incident's jobs at once.
- **Failures.** A handler that raises is logged and retried with exponential backoff, up to
  ``max_attempts`` claims; then the job is marked failed (a kind may bring its own :class:`Backoff`:
  jittered, with its own attempts and a maximum age, and giving up at once on an error whose
  ``retryable`` is False — the webhooks do). Raising says "not delivered": a
  handler whose failure may hide a delivery (a timeout) registers a ``delivered`` check, which
  is asked before every retry. Nothing a handler or the store does stops the loop.
- **Finished jobs are pruned.** Done and cancelled jobs are deleted ``keep_finished_ms`` (7 days)
  after they finished, failed ones ``keep_failed_ms`` (30 days) after: a failed job is the only
  record of a give-up (a webhook's last error), so it is kept longer to be looked at. A pass runs
  in the loop every ``prune_every_ms`` (an hour; it needs no wake-up of its own: the loop wakes at
  least every ``max_idle_ms``), deletes at most ``prune_batch`` jobs per state group through the
  ``jobs_finished`` index, and comes back ``prune_backlog_ms`` later while batches come back full.
- **No polling.** The loop sleeps until the earliest pending due time or lease expiry in the
  store (or ``max_idle_ms``, a safety net for jobs scheduled by another process), or until
  :meth:`Scheduler.wake` — called by :meth:`Scheduler.schedule` when a job is due before the
  current wake-up. The clock is injectable (:class:`ManualClock` in tests and benchmarks: time
  moves when the test says so and the loop wakes only when a sleep it asked for is over).

**Test-only kill points.** ``CC_TEST_KILL_AT=after_claim`` or ``after_send`` makes the process
SIGKILL itself right after it claimed a job, or right after a handler returned (before the job is
completed); ``before_update_commit``, ``after_update_write`` and ``after_first_copy`` are handlers' own
points (services/updates.py: inside a status update's transaction once its copies' job is written,
right after its commit, right after its first copy): the crash tests
(tests/e2e/test_reminder_sigkill.py, tests/e2e/test_update_fanout_sigkill.py, tests/e2e/test_webhooks.py) run
the real bot that way. It is refused (the bot does not start) unless ``CC_TEST_HOOKS=1`` is set as well; never set either in
production. ``CC_TEST_SCHEDULER_LEASE_MS`` (also only with ``CC_TEST_HOOKS=1``) shortens the lease
so that a killed process's claim expires quickly.

This is a service-layer module: it knows the store and the domain, never plugins or Mattermost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from domain import Incident
from storage.base import Store
from storage.jobs import Job, JobState

log = logging.getLogger(__name__)

Handler = Callable[["Firing"], Awaitable[None]]
#: Whether the side effect of a job (by its id) has already happened.
DeliveredCheck = Callable[[Job], Awaitable[bool]]


class Clock(Protocol):
    """Where the scheduler reads the time and waits."""

    def now_ms(self) -> int: ...

    async def sleep_until(self, when_ms: int, wake: asyncio.Event) -> None:
        """Return at ``when_ms``, or as soon as ``wake`` is set, whichever comes first."""


class SystemClock:
    """The real time."""

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    async def sleep_until(self, when_ms: int, wake: asyncio.Event) -> None:
        delay = (when_ms - self.now_ms()) / 1000
        if delay <= 0 or wake.is_set():
            return
        try:
            await asyncio.wait_for(wake.wait(), timeout=delay)
        except TimeoutError:
            pass


class ManualClock:
    """Simulated time for tests and benchmarks: it moves only by :meth:`advance`, and a sleeper
    is woken only when the time it asked for has come (so wake-ups can be counted)."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now = start_ms
        self._sleepers: list[tuple[int, asyncio.Future[None]]] = []

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> int:
        """Let ``ms`` pass at once; returns the new time."""
        self._now += ms
        for when, future in self._sleepers:
            if when <= self._now and not future.done():
                future.set_result(None)
        return self._now

    def set(self, now_ms: int) -> int:
        return self.advance(now_ms - self._now)

    @property
    def sleepers(self) -> list[int]:
        """When each current sleeper wants to wake (for tests)."""
        return sorted(when for when, future in self._sleepers if not future.done())

    async def sleep_until(self, when_ms: int, wake: asyncio.Event) -> None:
        if when_ms <= self._now or wake.is_set():
            await asyncio.sleep(0)
            return
        entry = (when_ms, asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        waiter = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({entry[1], waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            self._sleepers.remove(entry)


DAY_MS = 24 * 3_600_000
_DONE_OR_CANCELLED = (JobState.DONE, JobState.CANCELLED)
_FAILED = (JobState.FAILED,)

KILL_POINTS = frozenset({"after_claim", "after_send", "before_update_commit", "after_update_write",
                         "after_first_copy"})


class CrashHooks:
    """The test-only hooks from the environment (see the module docstring); ValueError when asked for
    without ``CC_TEST_HOOKS=1``, or for an unknown kill point."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        kill_at = env.get("CC_TEST_KILL_AT", "").strip()
        lease = env.get("CC_TEST_SCHEDULER_LEASE_MS", "").strip()
        enabled = env.get("CC_TEST_HOOKS", "") == "1"
        if (kill_at or lease) and not enabled:
            raise ValueError("CC_TEST_KILL_AT and CC_TEST_SCHEDULER_LEASE_MS are test-only hooks and need "
                             "CC_TEST_HOOKS=1; unset them")
        if kill_at and kill_at not in KILL_POINTS:
            raise ValueError(f"CC_TEST_KILL_AT must be one of {sorted(KILL_POINTS)}")
        self.kill_at = kill_at or None
        self.lease_ms = int(lease) if lease else None

    def kill_if(self, point: str) -> None:
        if self.kill_at == point:
            log.warning("scheduler: CC_TEST_KILL_AT=%s: killing this process now", point)
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class Firing:
    """What a handler is given: the job (payload, incident id, attempt) and how it is being fired."""

    job: Job
    now: int

    @property
    def late(self) -> bool:
        """Fired well after its due time (the bot was down, or busy)."""
        return self.job.late

    @property
    def attempt(self) -> int:
        return self.job.attempts


class Backoff:
    """A kind's own retries (instead of the scheduler's): exponential from ``base_ms``, capped at
    ``max_ms``, with equal jitter (half the delay fixed, half drawn from ``rng``: seed it in tests);
    given up after ``max_attempts`` claims, once the job is ``max_age_ms`` old, or at once for an
    error whose ``retryable`` attribute is False."""

    def __init__(self, *, base_ms: int = 10_000, max_ms: int = 60 * 60_000, max_attempts: int = 12,
                 max_age_ms: int = 24 * 3_600_000, rng: random.Random | None = None) -> None:
        if base_ms < 1 or max_ms < base_ms or max_attempts < 1 or max_age_ms < 1:
            raise ValueError("backoff: base_ms <= max_ms, and max_attempts and max_age_ms, must be positive")
        self.base_ms = base_ms
        self.max_ms = max_ms
        self.max_attempts = max_attempts
        self.max_age_ms = max_age_ms
        self.rng = rng or random.Random()

    def delay_ms(self, job: Job, now: int, error: BaseException) -> int | None:
        """How long until the next attempt; None: give up."""
        if getattr(error, "retryable", True) is False or job.attempts >= self.max_attempts:
            return None
        full = min(self.max_ms, self.base_ms * 2 ** min(job.attempts - 1, 40))
        delay = full // 2 + int(self.rng.uniform(0, full - full // 2))
        if now + delay - job.created_at > self.max_age_ms:
            return None
        return max(1, delay)

    def why_given_up(self, job: Job, error: BaseException) -> str:
        if getattr(error, "retryable", True) is False:
            return "not retryable"
        if job.attempts >= self.max_attempts:
            return f"gave up after {job.attempts} attempts"
        return f"gave up: older than {self.max_age_ms // 60_000} minutes"


@dataclass(frozen=True, slots=True)
class _Kind:
    handler: Handler
    delivered: DeliveredCheck | None
    while_ongoing: bool
    retry: Backoff | None = None


@dataclass
class SchedulerStats:
    """What the scheduler did, for logs, tests and the benchmark."""

    wakeups: int = 0      # rounds of the loop (each reads the store)
    claimed: int = 0
    fired: int = 0        # handlers that returned and whose job was completed
    retried: int = 0      # handler errors given back for a later attempt
    failed: int = 0       # jobs given up (attempts used up, or outcome unknown without a check)
    cancelled: int = 0    # claimed jobs of ended (or deleted) incidents, cancelled instead of fired
    already_delivered: int = 0  # reclaimed after a crash, and the check found them delivered
    lost: int = 0         # claims that were no longer ours when delivery was to begin or end
    errors: int = 0       # store failures in the loop
    pruned: int = 0       # finished jobs deleted past their retention


def default_owner() -> str:
    """A name for this process's claims: host, pid and a random part (unique even after pid reuse)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Scheduler:
    """Fires stored jobs through handlers registered per kind (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        owner: str | None = None,
        concurrency: int = 8,
        lease_ms: int = 60_000,
        late_ms: int = 60_000,
        max_attempts: int = 5,
        backoff_ms: int = 5_000,
        backoff_max_ms: int = 15 * 60_000,
        max_idle_ms: int = 10 * 60_000,
        error_pause_ms: int = 5_000,
        hooks: CrashHooks | None = None,
        keep_finished_ms: int = 7 * DAY_MS,
        keep_failed_ms: int = 30 * DAY_MS,
        prune_every_ms: int = 3_600_000,
        prune_batch: int = 1_000,
        prune_backlog_ms: int = 1_000,
    ) -> None:
        if concurrency < 1 or lease_ms < 2 or max_attempts < 1:
            raise ValueError("concurrency, lease_ms and max_attempts must be positive")
        if min(keep_finished_ms, keep_failed_ms, prune_every_ms, prune_batch, prune_backlog_ms) < 1:
            raise ValueError("the retentions, the prune interval, batch and backlog pause must be positive")
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.owner = owner or default_owner()
        self.concurrency = concurrency
        self.lease_ms = lease_ms
        self.late_ms = late_ms
        self.max_attempts = max_attempts
        self.backoff_ms = backoff_ms
        self.backoff_max_ms = backoff_max_ms
        self.max_idle_ms = max_idle_ms
        self.error_pause_ms = error_pause_ms
        self.stats = SchedulerStats()
        self.hooks = hooks
        self.keep_finished_ms = keep_finished_ms
        self.keep_failed_ms = keep_failed_ms
        self.prune_every_ms = prune_every_ms
        self.prune_batch = prune_batch
        self.prune_backlog_ms = prune_backlog_ms
        self._next_prune_at: int | None = None  # the first round of the loop prunes
        self._kinds: dict[str, _Kind] = {}
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()  # replaced by a fresh one each time it is set (see _signal)
        self._inflight: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._saturated = False
        self._sleeping_until: int | None = None
        self._task: asyncio.Task[None] | None = None

    # -- configuration ------------------------------------------------------------------------------
    def register(self, kind: str, handler: Handler, *, delivered: DeliveredCheck | None = None,
                 while_ongoing: bool = True, retry: Backoff | None = None) -> None:
        """Fire jobs of ``kind`` with ``handler``. ``delivered``: whether a job's side effect already
        happened (asked only after a crash mid-delivery). ``while_ongoing``: a job of an ended or
        deleted incident is cancelled instead of fired. ``retry``: the kind's own backoff and limits
        (default: the scheduler's ``backoff_ms``, ``backoff_max_ms`` and ``max_attempts``)."""
        if kind in self._kinds:
            raise ValueError(f"a handler for {kind!r} is already registered")
        self._kinds[kind] = _Kind(handler, delivered, while_ongoing, retry)
        self.wake()

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self._kinds)

    # -- scheduling -----------------------------------------------------------------------------------
    async def schedule(self, kind: str, key: str, *, due_at: int, payload: Mapping[str, Any] | None = None,
                       incident_id: str | None = None) -> Job:
        """Store a job (replacing the pending one of this kind and key) and wake the loop if it is due
        before its next wake-up."""
        job = await self.store.schedule_job(kind, key, due_at=due_at, now=self.clock.now_ms(), payload=payload,
                                            incident_id=incident_id)
        if self._sleeping_until is None or due_at < self._sleeping_until:
            # Once the job can be claimed: inside a transaction, after its commit (PostgreSQL's claim
            # runs on another connection and would not see it before, and the loop would sleep on).
            self.store.after_commit(self.wake)
        return job

    async def cancel(self, job_id: str) -> int:
        return await self.store.cancel_jobs(now=self.clock.now_ms(), job_id=job_id)

    async def cancel_key(self, kind: str, key: str) -> int:
        return await self.store.cancel_jobs(now=self.clock.now_ms(), kind=kind, key=key)

    async def cancel_incident(self, incident_id: str) -> int:
        """Cancel every pending or claimed job of the incident (it ended, or is gone)."""
        return await self.store.cancel_jobs(now=self.clock.now_ms(), incident_id=incident_id)

    def incident_changed(self, incident: Incident) -> None:
        """A listener (e.g. on the card updater): once an incident has ended, its jobs are cancelled."""
        if incident.is_ongoing:
            return
        task = asyncio.ensure_future(self._cancel_ended(incident.id))
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        self._signal()

    async def _cancel_ended(self, incident_id: str) -> None:
        try:
            # A read first: an ended incident's card may change again, and most have no live jobs.
            if await self.store.list_jobs(incident_id=incident_id, states=(JobState.PENDING, JobState.CLAIMED)):
                cancelled = await self.cancel_incident(incident_id)
                log.info("scheduler: %d job(s) of ended incident %s cancelled", cancelled, incident_id)
        except Exception:  # the job is cancelled when it comes due instead
            log.exception("scheduler: cancelling the jobs of incident %s failed", incident_id)

    # -- running --------------------------------------------------------------------------------------
    def wake(self) -> None:
        """Read the store again now (a job was scheduled earlier, or simulated time moved)."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="scheduler")

    async def stop(self) -> None:
        """Stop the loop and wait for handlers in flight (their jobs finish or stay claimed)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        pending = [*self._inflight, *self._background]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._sleeping_until = None

    async def settle(self) -> None:
        """Wait until nothing is due by the clock and no handler runs (tests and benchmarks)."""
        while not self._settled():
            await self._changed.wait()

    def _settled(self) -> bool:
        return (self._sleeping_until is not None and self._sleeping_until > self.clock.now_ms()
                and not self._wake.is_set() and not self._inflight and not self._background)

    def _signal(self) -> None:
        """Tell ``settle`` to look again."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before reading the store: a wake() from here on is not lost
            self._sleeping_until = None
            self.stats.wakeups += 1
            now = self.clock.now_ms()
            until = now + self.max_idle_ms
            try:
                await self._claim_and_fire(now)
                if len(self._inflight) >= self.concurrency:
                    pass  # a finishing handler wakes the loop
                else:
                    # Our own claims are settled by their handlers (a retry wakes the loop if earlier).
                    next_at = await self.store.next_job_time(self.kinds, not_claimed_by=self.owner)
                    if next_at is not None:
                        until = min(until, next_at)
                if await self._prune(now):
                    until = min(until, now + self.prune_backlog_ms)  # more to prune: the next batch soon
            except Exception:
                self.stats.errors += 1
                log.exception("scheduler: reading or claiming jobs failed; trying again shortly")
                until = min(until, now + self.error_pause_ms)
            if until <= self.clock.now_ms():
                await asyncio.sleep(0)
                continue
            self._sleeping_until = until
            self._signal()
            await self.clock.sleep_until(until, self._wake)

    async def _prune(self, now: int) -> bool:
        """One pass of the retention when it is due: at most one batch per state group, oldest first.
        True when a batch came back full (there is more). A failure waits for the next pass."""
        if self._next_prune_at is not None and now < self._next_prune_at:
            return False
        self._next_prune_at = now + self.prune_every_ms
        more = False
        for states, keep in (_DONE_OR_CANCELLED, self.keep_finished_ms), (_FAILED, self.keep_failed_ms):
            try:
                pruned = await self.store.prune_jobs(now - keep, states=states, limit=self.prune_batch)
            except Exception:
                log.exception("scheduler: pruning finished jobs failed; trying again at the next pass")
                return False
            self.stats.pruned += pruned
            more = more or pruned >= self.prune_batch
        if more:
            self._next_prune_at = now + self.prune_backlog_ms
        return more

    async def _claim_and_fire(self, now: int) -> None:
        free = self.concurrency - len(self._inflight)
        if free <= 0 or not self._kinds:
            return
        jobs = await self.store.claim_due_jobs(now, self.owner, lease_ms=self.lease_ms, limit=free,
                                               kinds=self.kinds, late_ms=self.late_ms)
        self._saturated = len(jobs) == free
        self.stats.claimed += len(jobs)
        if jobs and self.hooks is not None:
            self.hooks.kill_if("after_claim")
        for job in jobs:
            task = asyncio.create_task(self._fire(job), name=f"job-{job.kind}-{job.id}")
            self._inflight.add(task)
            task.add_done_callback(self._fired)

    def _fired(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if self._saturated or len(self._inflight) == self.concurrency - 1:
            self.wake()  # there may be more due than there were free slots
        self._signal()

    async def _fire(self, job: Job) -> None:
        token = job.token or ""
        try:
            await self._deliver(job, token)
        except Exception:  # a store failure: the job stays claimed and is claimed again after its lease
            self.stats.errors += 1
            log.exception("scheduler: job %s (%s) could not be settled; it is retried after its lease", job.id,
                          job.kind)

    async def _deliver(self, job: Job, token: str) -> None:
        kind = self._kinds[job.kind]
        if kind.while_ongoing and job.incident_id is not None:
            incident = await self.store.get_incident(job.incident_id)
            if incident is None or not incident.is_ongoing:
                await self.store.finish_job(job.id, token, now=self.clock.now_ms(), state=JobState.CANCELLED,
                                            error="the incident has ended")
                self.stats.cancelled += 1
                return
        # After a crash mid-delivery the outcome is unknown; before any retry a check is asked too,
        # when the kind has one (a handler error may be ambiguous, e.g. a timeout on the post).
        if job.maybe_delivered or (job.attempts > 1 and kind.delivered is not None):
            if kind.delivered is None:
                log.warning("scheduler: job %s (%s) may have been delivered before a crash and its kind cannot "
                            "check; not repeated", job.id, job.kind)
                await self.store.finish_job(job.id, token, now=self.clock.now_ms(), state=JobState.FAILED,
                                            error="outcome unknown after an interrupted delivery")
                self.stats.failed += 1
                return
            if await kind.delivered(job):
                await self.store.complete_job(job.id, token, now=self.clock.now_ms())
                self.stats.already_delivered += 1
                return
        if not await self.store.begin_job_delivery(job.id, token, now=self.clock.now_ms()):
            self.stats.lost += 1  # cancelled meanwhile, or the lease ran out
            return
        try:
            async with asyncio.timeout(self.lease_ms / 2000):
                await kind.handler(Firing(job, self.clock.now_ms()))
        except Exception as error:
            await self._failed(job, token, error)
            return
        if self.hooks is not None:
            self.hooks.kill_if("after_send")
        if await self.store.complete_job(job.id, token, now=self.clock.now_ms()):
            self.stats.fired += 1
        else:
            self.stats.lost += 1
            log.warning("scheduler: job %s (%s) fired but its claim was gone when completing it", job.id, job.kind)

    async def _failed(self, job: Job, token: str, error: BaseException) -> None:
        text = f"{type(error).__name__}: {error}"
        now = self.clock.now_ms()
        retry = self._kinds[job.kind].retry
        own: int | None = None
        if retry is not None:
            own = retry.delay_ms(job, now, error)
            if own is None:
                why = retry.why_given_up(job, error)
                log.error("scheduler: job %s (%s) failed (attempt %d); %s: %s", job.id, job.kind, job.attempts,
                          why, text)
                await self.store.finish_job(job.id, token, now=now, state=JobState.FAILED, error=f"{why}: {text}")
                self.stats.failed += 1
                return
        if retry is None and job.attempts >= self.max_attempts:
            log.error("scheduler: job %s (%s) failed %d times; giving up: %s", job.id, job.kind, job.attempts, text)
            await self.store.finish_job(job.id, token, now=now, state=JobState.FAILED, error=text)
            self.stats.failed += 1
            return
        delay = own if own is not None else min(
            self.backoff_max_ms, self.backoff_ms * 2 ** (job.attempts - 1))
        log.warning("scheduler: job %s (%s) failed (attempt %d), retrying in %d s: %s", job.id, job.kind,
                    job.attempts, delay // 1000, text, exc_info=error)
        await self.store.retry_job(job.id, token, due_at=now + delay, now=now, error=text)
        self.stats.retried += 1
        if self._sleeping_until is None or now + delay < self._sleeping_until:
            self.wake()


__all__ = ["KILL_POINTS", "Backoff", "Clock", "CrashHooks", "DeliveredCheck", "Firing", "Handler", "ManualClock", "Scheduler",
           "SchedulerStats", "SystemClock", "default_owner"]

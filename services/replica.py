"""Several bot replicas on one database: who is alive, and who handles the WebSocket (docs/replicas.md).

Every replica holds a **presence lease** ``replica:<id>`` for as long as it runs: a start journal
names the replica that wrote it, and a journal whose replica's presence has expired (it died) is
completed by whichever replica is leader (services/incidents.py ``IncidentService.recover``),
while one whose replica is alive is left to it.

One replica at a time holds the **leader lease** :data:`LEADER_LEASE`. Only the leader connects
the WebSocket and dispatches its events (plus the live card's duration ticks and the recovery
sweep); the others answer slash commands, clicks and dialogs over HTTP and fire scheduled jobs,
which the store fences by itself (storage/jobs.py). Each lease lasts ``lease_ms`` and is renewed
every ``lease_ms / 3``; a follower tries to take the leader lease just as often, so after the
leader dies the lease is taken within ``lease_ms * 4 / 3`` (:func:`takeover_bound_ms`), and the
new leader's WebSocket catches up from the checkpoint in the database.

Fencing: the leader stops acting as soon as its own clock passes the lease's expiry without a
renewal (``holds``), and a WebSocket event is handled only by whoever first records its durable
dedupe key (:meth:`Replica.claim_event`), so an event is never handled twice even by a leader that
stalled past its lease, nor after a takeover that replays what the old leader already handled.
The clock is injectable (services/scheduler.py ``Clock``; ``ManualClock`` in tests).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.scheduler import Clock, SystemClock
from storage.base import Store
from storage.leases import Lease

log = logging.getLogger(__name__)

#: The lease whose holder handles the WebSocket.
LEADER_LEASE = "websocket"
#: Prefix of every replica's presence lease.
PRESENCE_PREFIX = "replica:"
#: Kind of the single-use keys that make a WebSocket event handled once across replicas.
EVENT_KEY_KIND = "ws-event"
#: How long an event's dedupe key is kept: past the longest restart catch-up plus its overlap.
EVENT_KEY_KEEP_MS = 20 * 60 * 1000

Hook = Callable[[], Awaitable[None]]


def default_replica_id() -> str:
    """Host, pid and a random part: unique per process, even after pid reuse."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def takeover_bound_ms(lease_ms: int) -> int:
    """At most this long after the leader's last renewal a live follower holds the lease."""
    return lease_ms + lease_ms // 3 + 1


def presence_lease(replica_id: str) -> str:
    return PRESENCE_PREFIX + replica_id


@dataclass
class ReplicaStats:
    renewals: int = 0
    elections: int = 0   # times this replica took the leader lease
    depositions: int = 0  # times it lost it (or gave it up)
    errors: int = 0      # store failures in the loop


class Replica:
    """Keeps this replica's presence lease and takes, keeps and gives up the leader lease."""

    def __init__(self, store: Store, replica_id: str, *, lease_ms: int = 10_000, clock: Clock | None = None) -> None:
        if lease_ms < 3:
            raise ValueError("a lease lasts at least 3 ms")
        self.store = store
        self.id = replica_id
        self.lease_ms = lease_ms
        self.clock: Clock = clock or SystemClock()
        self.presence: Lease | None = None
        self.leader: Lease | None = None
        self._last_leader: Lease | None = None  # the last leader lease held (released at stop)
        self.stats = ReplicaStats()
        #: Run (in order) when this replica becomes the leader / stops being it.
        self.on_elected: list[Hook] = []
        self.on_deposed: list[Hook] = []
        #: Run after every round of the loop while leader (the recovery sweep, bot.py).
        self.while_leading: list[Hook] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._elected_at: int | None = None
        #: Set whenever a round of the loop has finished (tests wait on it).
        self.rounds = 0
        self._round = asyncio.Event()
        #: When the loop's next round is due while it sleeps (tests move simulated time to it).
        self.sleeping_until: int | None = None

    @property
    def interval_ms(self) -> int:
        return max(1, self.lease_ms // 3)

    def holds(self) -> bool:
        """Whether this replica may act as leader now: it holds the lease and, by its own clock, the
        lease has not expired without a renewal."""
        return self.leader is not None and self.clock.now_ms() < self.leader.expires_at

    def lease_info(self) -> dict[str, object]:
        """For /healthz: whether this replica leads, and until when."""
        leader = self.leader
        now = self.clock.now_ms()
        return {"replica": self.id, "leader": self.holds(),
                "epoch": leader.epoch if leader else None,
                "expires_in_ms": max(0, leader.expires_at - now) if leader else None}

    # -- running ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Take the presence lease and try the leader lease once (so a lone replica leads at once),
        then keep both in the background."""
        await self._round_once()
        self._task = asyncio.create_task(self._run(), name="replica-lease")

    async def stop(self) -> None:
        """Stop the loop, step down and give both leases up (a clean stop: nobody waits for them to expire)."""
        await self.halt()
        if self.leader is not None:
            await self._deposed("stopping")
        await self.release()

    async def halt(self) -> None:
        """Stop renewing (the leases stay until :meth:`release`, or until they expire)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def release(self) -> None:
        """Give both leases up at once, so another replica takes over without waiting for the expiry."""
        self.leader = None
        leases, self._last_leader, self.presence = (self._last_leader, self.presence), None, None
        for lease in leases:
            if lease is not None:
                try:
                    await self.store.release_lease(lease.name, lease.holder, lease.epoch)
                except Exception:  # it expires on its own
                    log.exception("replica %s: could not release lease %s", self.id, lease.name)

    def wake(self) -> None:
        self._wake.set()

    async def wait_round(self, rounds: int = 1) -> None:
        """Until ``rounds`` more rounds of the loop have finished (tests)."""
        await self.wait_until_round(self.rounds + rounds)

    async def wait_until_round(self, target: int) -> None:
        """Until the loop has finished ``target`` rounds in all (tests)."""
        while self.rounds < target:
            self._round.clear()
            await self._round.wait()

    async def _run(self) -> None:
        while True:
            self.sleeping_until = self.clock.now_ms() + self.interval_ms
            await self.clock.sleep_until(self.sleeping_until, self._wake)
            self.sleeping_until = None
            self._wake.clear()
            await self._round_once()

    async def _round_once(self) -> None:
        try:
            await self._keep_presence()
            await self._keep_leader()
        except asyncio.CancelledError:
            raise
        except Exception:
            self.stats.errors += 1
            log.exception("replica %s: renewing its leases failed; trying again shortly", self.id)
            if self.leader is not None and not self.holds():
                await self._deposed("its lease ran out while the database could not be reached")
        if self.holds():
            for hook in self.while_leading:
                try:
                    await hook()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("replica %s: a leader task failed", self.id)
        self.rounds += 1
        self._round.set()

    async def _keep_presence(self) -> None:
        now, name = self.clock.now_ms(), presence_lease(self.id)
        held = self.presence
        renewed = None
        if held is not None:
            renewed = await self.store.renew_lease(name, self.id, held.epoch, now=now, ttl_ms=self.lease_ms)
        if renewed is None:
            renewed = await self.store.acquire_lease(name, self.id, now=now, ttl_ms=self.lease_ms)
        self.presence = renewed

    async def _keep_leader(self) -> None:
        now = self.clock.now_ms()
        if self.leader is not None:
            renewed = await self.store.renew_lease(LEADER_LEASE, self.id, self.leader.epoch, now=now,
                                                   ttl_ms=self.lease_ms)
            if renewed is not None:
                self.leader = self._last_leader = renewed
                self.stats.renewals += 1
                return
            await self._deposed("another replica took the lease")
            return
        taken = await self.store.acquire_lease(LEADER_LEASE, self.id, now=now, ttl_ms=self.lease_ms)
        if taken is None:
            return
        self.leader = self._last_leader = taken
        self.stats.elections += 1
        log.info("replica %s leads (lease epoch %d)", self.id, taken.epoch)
        for hook in self.on_elected:
            try:
                await hook()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("replica %s: taking over as leader failed part-way", self.id)

    async def _deposed(self, why: str) -> None:
        self.leader = None
        self.stats.depositions += 1
        log.warning("replica %s no longer leads: %s", self.id, why)
        for hook in self.on_deposed:
            try:
                await hook()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("replica %s: stepping down failed part-way", self.id)

    # -- what the lease decides ---------------------------------------------------------------
    async def claim_event(self, key: str | None) -> bool:
        """Whether this replica handles a WebSocket event now: only while it leads, and (for events
        with a key: posts, reactions) only if nobody recorded the key before (durable, so neither a
        stalled former leader nor a catch-up after a takeover handles it a second time)."""
        if not self.holds():
            return False
        if key is None:
            return True
        now = self.clock.now_ms()
        return await self.store.claim_single_use(EVENT_KEY_KIND, key, expires_at=now + EVENT_KEY_KEEP_MS, now=now)

    async def is_alive(self, replica_id: str) -> bool:
        """Whether the replica with this id still renews its presence (an empty id: a journal written
        before replicas had ids, treated as gone)."""
        if not replica_id:
            return False
        if replica_id == self.id:
            return True
        lease = await self.store.get_lease(presence_lease(replica_id))
        return lease is not None and lease.valid_at(self.clock.now_ms())


__all__ = ["EVENT_KEY_KIND", "LEADER_LEASE", "Replica", "ReplicaStats", "default_replica_id", "takeover_bound_ms"]

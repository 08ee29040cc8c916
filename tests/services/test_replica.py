"""services/replica.py on the in-memory store with simulated time: one leader at a time, takeover
within the documented bound after the leader dies, fencing of a stalled leader, events handled once."""

from __future__ import annotations

import asyncio

from services.replica import LEADER_LEASE, Replica, presence_lease, takeover_bound_ms
from services.scheduler import ManualClock
from storage import open_store

LEASE = 3000


async def replicas(*names: str, clock: ManualClock):
    store = await open_store("memory://")
    made = [Replica(store, name, lease_ms=LEASE, clock=clock) for name in names]
    return store, made


async def advance(clock: ManualClock, ms: int, *replicas_: Replica, step: int = 100) -> None:
    """Let simulated time pass in small steps; after each, wait for the rounds of the loops it made due."""
    for _ in range(ms // step):
        await asyncio.sleep(0)  # a loop just started reaches its first sleep
        due = [(r, r.rounds + 1) for r in replicas_
               if r.sleeping_until is not None and r.sleeping_until <= clock.now_ms() + step]
        clock.advance(step)
        for replica, rounds in due:
            await asyncio.wait_for(replica.wait_until_round(rounds), 5)


async def test_the_first_replica_leads_and_the_second_waits(tmp_path):
    clock = ManualClock()
    store, (a, b) = await replicas("a", "b", clock=clock)
    elected: list[str] = []
    a.on_elected.append(lambda: _note(elected, "a"))
    b.on_elected.append(lambda: _note(elected, "b"))
    await a.start()
    await b.start()
    assert a.holds() and not b.holds() and elected == ["a"]
    assert a.lease_info()["leader"] is True and b.lease_info()["leader"] is False
    await advance(clock, 10 * LEASE, a, b)
    assert a.holds() and not b.holds() and elected == ["a"]  # renewed all along, never lost
    assert (await store.get_lease(LEADER_LEASE)).epoch == 1
    await a.stop()
    await b.stop()


async def test_a_dead_leader_is_replaced_within_the_bound():
    clock = ManualClock()
    store, (a, b) = await replicas("a", "b", clock=clock)
    elected_at: list[int] = []
    b.on_elected.append(lambda: _note(elected_at, clock.now_ms()))
    await a.start()
    await b.start()
    await advance(clock, LEASE, a, b)
    last_renewal = (await store.get_lease(LEADER_LEASE)).expires_at - LEASE
    await a.halt()  # SIGKILL: no more renewals, nothing released
    await advance(clock, 2 * LEASE, b)
    assert b.holds() and len(elected_at) == 1
    assert elected_at[0] - last_renewal <= takeover_bound_ms(LEASE)
    assert (await store.get_lease(LEADER_LEASE)).epoch == 2
    # The old leader's presence has run out too: its starts are anyone's to complete.
    assert not await b.is_alive("a") and await b.is_alive("b")
    await b.stop()


async def test_a_clean_stop_hands_over_at_the_next_round():
    clock = ManualClock()
    store, (a, b) = await replicas("a", "b", clock=clock)
    await a.start()
    await b.start()
    await a.stop()
    assert (await store.get_lease(LEADER_LEASE)).expires_at == 0
    assert (await store.get_lease(presence_lease("a"))).expires_at == 0
    await advance(clock, b.interval_ms + 100, b)
    assert b.holds()
    await b.stop()


async def test_a_stalled_leader_stops_acting_and_steps_down():
    clock = ManualClock()
    _store, (a, b) = await replicas("a", "b", clock=clock)
    deposed: list[str] = []
    a.on_deposed.append(lambda: _note(deposed, "a"))
    await a.start()
    await b.start()
    await a.halt()  # a stalls (a long GC pause, a frozen VM): it renews nothing
    clock.advance(LEASE)
    assert not a.holds()  # by its own clock it may not act any more, even before it notices
    assert not await a.claim_event("post:x")
    await advance(clock, b.interval_ms + 100, b)
    assert b.holds()
    await a._round_once()  # a wakes up: its renewal fails, it steps down
    assert a.leader is None and deposed == ["a"]
    await b.stop()


async def test_an_event_is_handled_once_even_by_two_replicas_that_both_think_they_lead():
    clock = ManualClock()
    _store, (a, b) = await replicas("a", "b", clock=clock)
    await a.start()
    await b.start()
    assert await a.claim_event("post:p1")
    assert not await a.claim_event("post:p1")  # a replayed copy (catch-up after a takeover)
    b.leader = a.leader  # b wrongly believes it leads: the durable key still decides
    assert not await b.claim_event("post:p1")
    assert await b.claim_event("post:p2")
    assert await a.claim_event(None)  # events without a key: the lease alone decides
    b.leader = None
    assert not await b.claim_event(None) and not await b.claim_event("post:p3")
    await a.stop()
    await b.stop()


async def _note(where: list, what) -> None:
    where.append(what)

"""Leases (storage/leases.py) on every backend: one holder at a time, compare-and-set, epochs that
only grow, and the small version read the card updater uses (docs/replicas.md)."""

from __future__ import annotations

import asyncio

import pytest

from .builders import T0, incident

TTL = 10_000


async def test_a_free_lease_is_taken_and_others_are_refused_until_it_expires(store):
    assert await store.get_lease("websocket") is None
    first = await store.acquire_lease("websocket", "a", now=T0, ttl_ms=TTL)
    assert first is not None and (first.holder, first.epoch, first.expires_at) == ("a", 1, T0 + TTL)
    assert await store.acquire_lease("websocket", "b", now=T0 + TTL - 1, ttl_ms=TTL) is None
    assert await store.get_lease("websocket") == first
    taken = await store.acquire_lease("websocket", "b", now=T0 + TTL, ttl_ms=TTL)
    assert taken is not None and (taken.holder, taken.epoch) == ("b", 2)
    assert first.valid_at(T0) and not first.valid_at(T0 + TTL)


async def test_renew_needs_the_same_holder_and_epoch(store):
    lease = await store.acquire_lease("websocket", "a", now=T0, ttl_ms=TTL)
    assert lease is not None
    renewed = await store.renew_lease("websocket", "a", lease.epoch, now=T0 + 5_000, ttl_ms=TTL)
    assert renewed is not None and renewed.expires_at == T0 + 15_000 and renewed.epoch == lease.epoch
    assert await store.renew_lease("websocket", "b", lease.epoch, now=T0 + 5_000, ttl_ms=TTL) is None
    assert await store.renew_lease("websocket", "a", lease.epoch + 1, now=T0 + 5_000, ttl_ms=TTL) is None
    # Expired but nobody took it: the holder may still renew (nobody acted under a newer epoch).
    late = await store.renew_lease("websocket", "a", lease.epoch, now=T0 + 60_000, ttl_ms=TTL)
    assert late is not None and late.expires_at == T0 + 70_000
    # Once another holder took it, the old holder's renewal fails for good.
    assert await store.acquire_lease("websocket", "b", now=T0 + 80_000, ttl_ms=TTL) is not None
    assert await store.renew_lease("websocket", "a", lease.epoch, now=T0 + 80_001, ttl_ms=TTL) is None
    assert await store.renew_lease("missing", "a", 1, now=T0, ttl_ms=TTL) is None


async def test_release_frees_it_at_once_and_the_epoch_never_goes_back(store):
    lease = await store.acquire_lease("websocket", "a", now=T0, ttl_ms=TTL)
    assert lease is not None
    assert not await store.release_lease("websocket", "b", lease.epoch)
    assert not await store.release_lease("websocket", "a", lease.epoch + 1)
    assert await store.release_lease("websocket", "a", lease.epoch)
    taken = await store.acquire_lease("websocket", "b", now=T0 + 1, ttl_ms=TTL)
    assert taken is not None and taken.epoch == lease.epoch + 1
    assert not await store.release_lease("websocket", "a", lease.epoch)  # not a's any more
    again = await store.acquire_lease("websocket", "b", now=T0 + 2, ttl_ms=TTL)  # the holder itself: a new epoch
    assert again is not None and again.epoch == taken.epoch + 1
    assert await store.get_lease("websocket") == again


async def test_leases_are_independent_by_name(store):
    assert await store.acquire_lease("websocket", "a", now=T0, ttl_ms=TTL) is not None
    other = await store.acquire_lease("sweeper", "b", now=T0, ttl_ms=TTL)
    assert other is not None and other.epoch == 1


async def test_bad_lease_arguments_are_refused(store):
    with pytest.raises(ValueError):
        await store.acquire_lease("", "a", now=T0, ttl_ms=TTL)
    with pytest.raises(ValueError):
        await store.acquire_lease("websocket", "", now=T0, ttl_ms=TTL)
    with pytest.raises(ValueError):
        await store.acquire_lease("websocket", "a", now=T0, ttl_ms=0)


async def test_two_stores_racing_for_one_lease_give_it_to_exactly_one(store, store_factory):
    other = store_factory()
    await other.open()
    try:
        for round_ in range(10):
            now = T0 + round_ * 2 * TTL  # each round starts once the last lease has expired
            results = await asyncio.gather(*(s.acquire_lease("websocket", f"{name}{i}", now=now, ttl_ms=TTL)
                                             for i in range(4) for s, name in ((store, "x"), (other, "y"))))
            winners = [lease for lease in results if lease is not None]
            assert len(winners) == 1, winners
            assert await store.get_lease("websocket") == winners[0]
    finally:
        await other.close()


async def test_incident_version_is_the_stored_version(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    assert await store.incident_version(inc.id) == inc.version
    saved, _ = await store.mutate_incident(inc.id, lambda i: (i.model_copy(update={"name": "Renamed"}), []))
    assert await store.incident_version(inc.id) == saved.version > inc.version
    assert await store.incident_version("missing") is None

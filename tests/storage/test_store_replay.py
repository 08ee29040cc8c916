"""Single-use keys (replay protection) on every backend: atomic claims, kept across a reopen,
pruned by age and bounded in number."""

from __future__ import annotations

import asyncio

from gateway.signing import ReplayGuard

T = 1_700_000_000_000  # an arbitrary "now", epoch ms


async def test_a_key_is_claimed_once_per_kind(store):
    assert await store.claim_single_use("dialog", "n1", expires_at=T + 1000, now=T)
    assert not await store.claim_single_use("dialog", "n1", expires_at=T + 1000, now=T + 10)
    assert await store.claim_single_use("trigger", "n1", expires_at=T + 1000, now=T)  # another kind
    assert await store.claim_single_use("dialog", "n2", expires_at=T + 1000, now=T)


async def test_a_claim_survives_reopening_the_store(store_factory):
    first = store_factory()
    await first.open()
    assert await first.claim_single_use("dialog", "n1", expires_at=T + 60_000, now=T)
    await first.close()
    second = store_factory()
    await second.open()
    try:
        assert not await second.claim_single_use("dialog", "n1", expires_at=T + 60_000, now=T + 1000)
    finally:
        await second.close()


async def test_expired_and_released_keys_can_be_claimed_again(store):
    assert await store.claim_single_use("trigger", "t", expires_at=T + 1000, now=T)
    assert not await store.claim_single_use("trigger", "t", expires_at=T + 2000, now=T + 1000)  # still valid
    assert await store.claim_single_use("trigger", "t", expires_at=T + 5000, now=T + 1001)  # expired
    assert not await store.claim_single_use("trigger", "t", expires_at=T + 5000, now=T + 1002)
    assert await store.release_single_use("trigger", "t")
    assert not await store.release_single_use("trigger", "t")
    assert await store.claim_single_use("trigger", "t", expires_at=T + 5000, now=T + 1003)


async def test_pruning_deletes_what_expired_and_bounds_the_count(store):
    for n in range(10):
        await store.claim_single_use("dialog", f"n{n}", expires_at=T + n * 1000, now=T)
    assert await store.prune_single_use(T + 3500, max_entries=100) == 4  # n0..n3 expired
    # Over the bound, the soonest-expiring keys go first.
    assert await store.prune_single_use(T + 3500, max_entries=4) == 2  # n4, n5
    for n in range(6):
        assert await store.claim_single_use("dialog", f"n{n}", expires_at=T + 99_000, now=T + 3500)
    for n in range(6, 10):
        assert not await store.claim_single_use("dialog", f"n{n}", expires_at=T + 99_000, now=T + 3500)
    assert await store.prune_single_use(T + 10_000, max_entries=100) == 4
    assert await store.prune_single_use(T + 10_000, max_entries=100) == 0


async def test_concurrent_claims_of_one_key_let_exactly_one_through(store):
    results = await asyncio.gather(*(store.claim_single_use("dialog", "same", expires_at=T + 1000, now=T)
                                     for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]
    different = await asyncio.gather(*(store.claim_single_use("dialog", f"k{i}", expires_at=T + 1000, now=T)
                                       for i in range(8)))
    assert different == [True] * 8


class Clock:
    """An injectable wall clock, in seconds."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


async def test_the_replay_guard_prunes_by_age_with_its_clock(store):
    clock = Clock(T / 1000)
    guard = ReplayGuard(store, clock=clock, max_entries=1000, prune_every_s=60)
    assert await guard.claim("trigger", "old", T + 300_000)  # valid for 5 minutes
    assert not await guard.claim("trigger", "old", T + 300_000)
    clock.now_s += 301  # past its validity, and past the prune interval: the next claim prunes
    assert await guard.claim("trigger", "new", T + 601_000)
    assert await store.release_single_use("trigger", "new")
    assert not await store.release_single_use("trigger", "old")  # pruned, not just expired


async def test_the_replay_guard_keeps_the_table_bounded(store):
    clock = Clock(T / 1000)
    guard = ReplayGuard(store, clock=clock, max_entries=20, prune_every_s=3600)
    for n in range(45):
        assert await guard.claim("trigger", f"t{n}", T + 300_000 + n)
    # Pruned every max_entries // 10 claims (here 2, and the 45th claim is one): at the bound, and
    # the keys kept are the ones valid longest.
    still_held = [n for n in range(45)
                  if not await store.claim_single_use("trigger", f"t{n}", expires_at=T + 300_000, now=T)]
    assert still_held == list(range(25, 45))

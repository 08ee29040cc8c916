"""A start's two write transactions in one trip each (issue 15: CPU per start).

The dialog's transaction spends the submission's key with ``claim_single_use_or_fail``, which waits to go
with the next statement (the name's claim, carrying the COMMIT), and the incident's transaction holds
``create_incident(conflict_at_commit=True)`` back for its COMMIT: on SQLite one trip to the writer's
thread each instead of two. On every backend they keep what they promise: a key used already refuses the
whole transaction with the caller's error and writes nothing, a second incident for a channel is a
Conflict that writes nothing, and the store goes on working afterwards."""

from __future__ import annotations

import pytest

from domain.errors import Conflict

from .builders import T0, incident


class Replayed(Exception):
    pass


async def dialog_transaction(store, key: str, incident_id: str, refusals: list[str]) -> str:
    """The start's first transaction: the dialog's key, the journal, the name's claim with the COMMIT."""
    def taken() -> BaseException:
        refusals.append(key)
        return Replayed(key)

    async with store.transaction():
        await store.claim_single_use_or_fail("dialog", key, expires_at=T0 + 60_000, now=T0, taken=taken)
        await store.set_setting(f"start:{incident_id}", "journal")
        store.commit_with_next()
        return await store.setting_or_default("start-channel:t:x", incident_id)


async def test_the_dialog_transaction_spends_the_key_and_writes_all_of_it(store):
    refusals: list[str] = []
    assert await dialog_transaction(store, "k1", "a", refusals) == "a"
    assert refusals == []
    assert await store.get_setting("start:a") == "journal"
    assert await store.get_setting("start-channel:t:x") == "a"
    assert await store.claim_single_use("dialog", "k1", expires_at=T0 + 60_000, now=T0) is False


async def test_a_spent_key_refuses_the_whole_transaction_with_the_callers_error(store):
    refusals: list[str] = []
    await dialog_transaction(store, "k1", "a", refusals)
    with pytest.raises(Replayed, match="k1"):
        await dialog_transaction(store, "k1", "b", refusals)
    assert refusals == ["k1"]
    # Nothing of the refused copy was written: no journal, the name still held by the first start.
    assert await store.get_setting("start:b") is None
    assert await store.get_setting("start-channel:t:x") == "a"
    # The writer goes on: another submission's key, journal and claim.
    await store.delete_settings({"start-channel:t:x": None})
    assert await dialog_transaction(store, "k2", "c", refusals) == "c"
    assert refusals == ["k1"] and await store.get_setting("start:c") == "journal"


async def test_an_expired_key_may_be_spent_again(store):
    refusals: list[str] = []
    async with store.transaction():
        await store.claim_single_use_or_fail("dialog", "old", expires_at=T0 - 1, now=T0 - 10, taken=lambda: Replayed())
    async with store.transaction():
        await store.claim_single_use_or_fail("dialog", "old", expires_at=T0 + 10, now=T0,
                                             taken=lambda: refusals.append("old") or Replayed())
    assert refusals == []


async def test_outside_a_transaction_the_refusal_comes_at_the_call(store):
    await store.claim_single_use_or_fail("dialog", "k", expires_at=T0 + 10, now=T0, taken=lambda: Replayed())
    with pytest.raises(Replayed):
        await store.claim_single_use_or_fail("dialog", "k", expires_at=T0 + 10, now=T0, taken=lambda: Replayed())


async def test_a_second_incident_for_a_channel_writes_nothing_of_its_transaction(store):
    first, events = incident(channel_id="chan-one")
    async with store.transaction():
        await store.create_incident(first, events)
        await store.set_setting("listener", "wrote")  # what an in-transaction listener adds
    assert await store.get_incident(first.id) == first
    second, second_events = incident(name="Again", channel_id="chan-one")
    with pytest.raises(Conflict, match="already has an incident"):
        async with store.transaction():
            await store.create_incident(second, second_events, conflict_at_commit=True)
            await store.set_setting("listener", "second")
    assert await store.get_incident(second.id) is None
    assert await store.timeline(second.id) == []
    assert await store.get_setting("listener") == "wrote"
    # Outside a transaction the Conflict comes from the call itself.
    with pytest.raises(Conflict):
        await store.create_incident(second, second_events)
    third, third_events = incident(name="Elsewhere", channel_id="chan-two")
    await store.create_incident(third, third_events)
    assert (await store.get_incident(third.id)).name == "Elsewhere"


@pytest.mark.backends("sqlite", reason="counts hand-offs to the writer's aiosqlite thread")
async def test_a_starts_two_transactions_cost_one_trip_each(store, hops):
    warm, warm_events = incident()
    await store.create_incident(warm, warm_events)
    hops.clear()
    assert await dialog_transaction(store, "k", "a", []) == "a"
    assert len(hops) == 1
    hops.clear()
    started, events = incident(name="Payments down")
    async with store.transaction():
        store.commit_without_sync()
        await store.create_incident(started, events, conflict_at_commit=True)
        await store.set_setting("listener", "queued")
    assert len(hops) == 1
    assert await store.get_incident(started.id) == started
    assert [e.kind for e in await store.timeline(started.id)] == [e.kind for e in events]
    assert await store.get_setting("listener") == "queued"

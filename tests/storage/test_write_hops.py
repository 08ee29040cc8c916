"""The CPU a small write costs (issue 15): one trip to the writer's thread, BEGIN and COMMIT included.

A start makes about eight small writes (single-use trigger and dialog keys, the journal, the name claim,
the incident, the card post id, the journal's removal); each trip to aiosqlite's thread is a hand-off
and an event-loop wake-up. These tests count the trips and check that one-trip writes keep what
transactions promise: all or nothing, joined by an outer transaction, safe when cancelled or raced."""

from __future__ import annotations

import asyncio

import pytest

from domain.errors import Conflict

from .builders import T0, incident, writes_on_the_writers_thread


@pytest.mark.backends("sqlite", reason="counts hand-offs to the writer's aiosqlite thread")
async def test_each_small_write_is_one_trip_to_the_writer(store, hops):
    inc, events = incident()
    writes = [
        lambda: store.set_setting("start:a", "journal"),
        lambda: store.setting_or_default("start-channel:t:x", "a"),
        lambda: store.delete_setting("start:a"),
        lambda: store.delete_setting("start-channel:t:x", if_value="a"),
        lambda: store.claim_single_use("dialog", "k", expires_at=T0 + 10, now=T0),
        lambda: store.create_incident(inc, events),
    ]
    for write in writes:
        hops.clear()
        await write()
        assert len(hops) == 1, write
    # ... and what they wrote is there.
    assert await store.get_incident(inc.id) == inc
    assert [e.id for e in await store.timeline(inc.id)] == [events[0].id]
    assert await store.settings_with_prefix("start") == {}
    assert await store.claim_single_use("dialog", "k", expires_at=T0 + 10, now=T0) is False


async def test_delete_setting_if_value_releases_only_the_holders_claim(store):
    assert await store.setting_or_default("start-channel:t:x", "first") == "first"
    assert await store.delete_setting("start-channel:t:x", if_value="second") is False
    assert await store.get_setting("start-channel:t:x") == "first"
    assert await store.delete_setting("start-channel:t:x", if_value="first") is True
    assert await store.get_setting("start-channel:t:x") is None
    assert await store.delete_setting("start-channel:t:x", if_value="first") is False


async def test_one_trip_writes_join_an_outer_transaction_and_roll_back_with_it(store):
    inc, events = incident()

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with store.transaction():
            await store.set_setting("start:a", "journal")
            assert await store.setting_or_default("start-channel:t:x", "a") == "a"
            assert await store.claim_single_use("dialog", "k", expires_at=T0 + 10, now=T0) is True
            await store.create_incident(inc, events)
            assert await store.get_incident(inc.id) == inc  # our own uncommitted write
            raise Boom
    assert await store.get_incident(inc.id) is None
    assert await store.timeline(inc.id) == []
    assert await store.settings_with_prefix("start") == {}
    assert await store.claim_single_use("dialog", "k", expires_at=T0 + 10, now=T0) is True


async def test_a_failed_one_trip_write_leaves_nothing_and_the_store_keeps_working(store):
    first, first_events = incident()
    await store.create_incident(first, first_events)
    second, second_events = incident(channel_id=first.channel_id, name="Same channel")
    with pytest.raises(Conflict):
        await store.create_incident(second, second_events)
    assert await store.get_incident(second.id) is None
    assert await store.timeline(second.id) == []  # the events of the refused incident were not kept
    await store.set_setting("after", "ok")  # no transaction left open on the writer
    assert await store.get_setting("after") == "ok"


async def test_a_cancelled_one_trip_write_is_whole_or_absent_and_blocks_nothing(store):
    writes_on_the_writers_thread(store)  # a write the loop's thread runs itself is over before any cancel
    inc, events = incident()
    task = asyncio.create_task(store.create_incident(inc, events))
    await asyncio.sleep(0)  # let it queue its work (a scheduling point, not a wait for time)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with store.transaction():
        # Read inside a transaction: after the cancelled write, which may still be committing
        # (SQLite readers could otherwise see it land between the two reads).
        stored = await store.get_incident(inc.id)
        assert [e.id for e in await store.timeline(inc.id)] == ([events[0].id] if stored else [])
        await store.set_setting("after", "ok")
    assert await store.get_setting("after") == "ok"


async def test_two_claims_of_one_name_at_once_have_one_winner(store):
    holders = await asyncio.gather(*(store.setting_or_default("start-channel:t:x", f"start{n}")
                                     for n in range(10)))
    assert len(set(holders)) == 1 and holders[0] in {f"start{n}" for n in range(10)}
    claims = await asyncio.gather(*(store.claim_single_use("dialog", "same", expires_at=T0 + 10, now=T0)
                                    for _ in range(10)))
    assert claims.count(True) == 1

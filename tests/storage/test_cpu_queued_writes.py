"""Writes that answer nothing travel with the next statement or the COMMIT (issue 15, CPU per start).

Inside a transaction, ``set_setting`` and ``delete_settings`` make no trip of their own to SQLite's
writer thread: a start's two transactions cost 3 and 2 trips instead of 4 and 4. They keep what a
transaction promises: read back by the transaction itself, in order, all or nothing, safe when a
queued write fails or the transaction is cancelled."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from domain import incidents as ops

from .builders import T0, incident


async def test_delete_settings_removes_each_key_and_a_claim_only_from_its_holder(store):
    await store.set_setting("start:a", "journal")
    await store.set_setting("start-channel:t:x", "a")
    await store.set_setting("start-channel:t:y", "someone else")
    await store.delete_settings({"start:a": None, "start-channel:t:x": "a", "start-channel:t:y": "a",
                                 "never-set": None, "never-set-either": "a"})
    assert await store.settings_with_prefix("start") == {"start-channel:t:y": "someone else"}
    await store.delete_settings({})  # nothing to do is fine
    assert await store.get_setting("start-channel:t:y") == "someone else"


async def test_queued_writes_are_read_back_in_order_by_their_transaction(store):
    async with store.transaction():
        await store.set_setting("start:a", "first")
        await store.set_setting("start:a", "second")
        assert await store.get_setting("start:a") == "second"
        await store.delete_settings({"start:a": "second"})
        assert await store.get_setting("start:a") is None
        await store.set_setting("start:b", "kept")
        assert await store.setting_or_default("start:b", "default") == "kept"
        await store.set_setting("start:c", "last")  # goes with the commit
    assert await store.settings_with_prefix("start") == {"start:b": "kept", "start:c": "last"}


async def test_queued_writes_roll_back_with_their_transaction(store):
    await store.set_setting("start:old", "journal")

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with store.transaction():
            await store.set_setting("start:a", "journal")
            await store.delete_settings({"start:old": None})
            raise Boom
    assert await store.settings_with_prefix("start") == {"start:old": "journal"}
    with pytest.raises(Boom):
        async with store.transaction():
            await store.set_setting("start:a", "journal")
            assert await store.claim_single_use("dialog", "k", expires_at=T0 + 10, now=T0) is True
            await store.delete_settings({"start:old": None})
            raise Boom
    assert await store.settings_with_prefix("start") == {"start:old": "journal"}
    assert await store.claim_single_use("dialog", "k", expires_at=T0 + 10, now=T0) is True


@pytest.mark.backends("sqlite", reason="counts hand-offs to the writer's aiosqlite thread")
async def test_a_starts_two_transactions_cost_three_and_two_trips(store, hops):
    inc, events = incident()
    await store.create_incident(inc, events)
    hops.clear()
    async with store.transaction():  # the dialog's key, the journal and the name's claim
        assert await store.claim_single_use("dialog", "k", expires_at=T0 + 10, now=T0) is True
        await store.set_setting("start:a", "journal")
        assert await store.setting_or_default("start-channel:t:x", "a") == "a"
    assert len(hops) == 3
    hops.clear()
    async with store.transaction():  # the card's post id, the journal's removal and the claim's release
        await store.mutate_incident(inc.id, lambda current: (ops.set_card_post(current, "p" * 26), []))
        await store.delete_settings({"start:a": None, "start-channel:t:x": "a"})
    assert len(hops) == 2
    hops.clear()
    async with store.transaction():  # only queued writes: BEGIN, them and COMMIT in one trip
        await store.set_setting("only", "queued")
        await store.delete_settings({"start:a": None})
    assert len(hops) == 1
    hops.clear()
    await store.set_setting("outside", "a transaction")  # its own trip, committed at once
    assert len(hops) == 1
    assert (await store.get_incident(inc.id)).card_post_id == "p" * 26
    assert await store.settings_with_prefix("start") == {}
    assert await store.get_setting("only") == "queued" and await store.get_setting("outside") == "a transaction"


@pytest.mark.backends("sqlite", reason="a queued write failing on the writer's thread")
async def test_a_failing_queued_write_rolls_back_the_whole_transaction(store):
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    for carried_by in ("commit", "next statement"):
        with pytest.raises(sqlite3.OperationalError):
            async with store.transaction():
                await store.set_setting("start:a", "journal")
                await store._write_later(broken)
                await store.set_setting("start:b", "journal")
                if carried_by == "next statement":
                    await store.setting_or_default("start:c", "x")
        assert await store.settings_with_prefix("start") == {}, carried_by
    # No transaction was left open on the writer.
    async with store.transaction():
        await store.set_setting("after", "ok")
    assert await store.get_setting("after") == "ok"


async def test_a_cancelled_transaction_with_queued_writes_leaves_nothing_and_blocks_nothing(store):
    started = asyncio.Event()
    never = asyncio.Event()

    async def start() -> None:
        async with store.transaction():
            await store.set_setting("start:a", "journal")
            assert await store.claim_single_use("dialog", "k", expires_at=T0 + 10, now=T0) is True
            await store.set_setting("start:b", "journal")
            started.set()
            await never.wait()

    task = asyncio.create_task(start())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.settings_with_prefix("start") == {}
    assert await store.claim_single_use("dialog", "k", expires_at=T0 + 10, now=T0) is True
    await store.set_setting("after", "ok")
    assert await store.get_setting("after") == "ok"


async def test_two_transactions_at_once_each_keep_their_own_queued_writes(store):
    async def one(n: int) -> None:
        async with store.transaction():
            await store.set_setting(f"start:{n}", "journal")
            await store.delete_settings({f"start:{n}": None})
            await store.set_setting(f"start:{n}", f"kept {n}")

    await asyncio.gather(*(one(n) for n in range(8)))
    assert await store.settings_with_prefix("start") == {f"start:{n}": f"kept {n}" for n in range(8)}

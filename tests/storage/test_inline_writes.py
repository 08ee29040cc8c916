"""SQLite's small writes on the event loop's own thread (issue 15: CPU per start), and when they are not.

A trip to the writer's thread costs more CPU than the statements it carries, so the loop runs a small write
itself (``SqliteStore._writer_trip``) — but never while the writer's thread still has work of this
connection (it queues behind, in order), never waiting for another process's lock (that write goes to
the writer's thread, which waits, while the loop goes on), and not for a while after one took too long
(a slow disk). Each case keeps what a write promises."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from storage import sqlite as sqlite_store

from .builders import T0, incident

pytestmark = pytest.mark.backends("sqlite", reason="the writer's thread and the event loop's")


@pytest.fixture
def handoffs(store):
    """Calls handed to the writer's own thread."""
    seen: list[object] = []
    tracked = store._writer._execute

    def counting(fn, *args, **kwargs):
        seen.append(fn)
        return tracked(fn, *args, **kwargs)

    store._writer._execute = counting
    yield seen
    store._writer._execute = tracked


async def busy_timeout(store) -> int:
    rows = await store._writer.execute_fetchall("PRAGMA busy_timeout")
    return int(next(iter(rows))[0])


async def test_a_small_write_runs_on_the_loops_thread_and_keeps_the_busy_timeout(store, handoffs):
    inc, events = incident()
    await store.create_incident(inc, events)
    await store.set_setting("k", "v")
    async with store.transaction():
        await store.set_setting("a", "1")
        assert await store.setting_or_default("b", "2") == "2"
    assert handoffs == []
    assert await store.get_incident(inc.id) == inc
    assert {k: await store.get_setting(k) for k in ("k", "a", "b")} == {"k": "v", "a": "1", "b": "2"}
    assert await busy_timeout(store) == store._busy_timeout_ms  # only the loop's own writes never wait


async def test_while_the_writers_thread_is_busy_a_write_queues_behind_its_work(store, handoffs):
    release = threading.Event()
    order: list[str] = []

    def slow() -> None:  # work of this connection still running on its thread
        release.wait(10)
        order.append("earlier work")

    earlier = asyncio.ensure_future(store._writer._execute(slow))
    await asyncio.sleep(0)  # a scheduling point: the earlier work is queued

    async def write() -> None:
        await store.set_setting("later", "1")
        order.append("later write")

    later = asyncio.create_task(write())
    await asyncio.sleep(0)
    assert not later.done() and len(handoffs) == 2  # queued behind, not run beside it on the loop
    release.set()
    await asyncio.gather(earlier, later)
    assert order == ["earlier work", "later write"] and await store.get_setting("later") == "1"


async def test_another_process_holding_the_lock_makes_the_write_wait_on_the_writers_thread(store, handoffs):
    other = sqlite3.connect(store.path, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO settings (key, value, updated_at) VALUES ('other', 'first', 0)")
        write = asyncio.create_task(store.set_setting("mine", "second"))
        ticks = 0
        for _ in range(5):  # the loop goes on meanwhile: it never waits for the lock itself
            await asyncio.sleep(0)
            ticks += 1
        assert ticks == 5 and not write.done()
        assert len(handoffs) == 1 and store._writer_sent == store._writer_done + 1
        other.execute("COMMIT")
        await write
    finally:
        other.close()
    assert await store.get_setting("other") == "first" and await store.get_setting("mine") == "second"
    assert await busy_timeout(store) == store._busy_timeout_ms
    handoffs.clear()
    await store.set_setting("after", "ok")  # back on the loop's thread
    assert handoffs == [] and await store.get_setting("after") == "ok"


async def test_a_transaction_begun_while_locked_waits_and_then_commits_whole(store):
    other = sqlite3.connect(store.path, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")

        async def start() -> None:
            async with store.transaction():
                await store.claim_single_use_or_fail("dialog", "k", expires_at=T0 + 10, now=T0,
                                                     taken=lambda: RuntimeError("taken"))
                await store.set_setting("start:a", "journal")
                store.commit_with_next()
                assert await store.setting_or_default("start-channel:t:x", "a") == "a"

        task = asyncio.create_task(start())
        await asyncio.sleep(0)
        assert not task.done()
        other.execute("COMMIT")
        await task
    finally:
        other.close()
    assert await store.get_setting("start:a") == "journal"
    assert await store.claim_single_use("dialog", "k", expires_at=T0 + 10, now=T0) is False


async def test_writes_over_the_budget_in_a_row_send_the_next_ones_to_the_writers_thread(store, handoffs, monkeypatch):
    await store.set_setting("warm", "up")
    monkeypatch.setattr(sqlite_store, "INLINE_WRITE_BUDGET_S", 0.0)  # any write is "too slow"
    await store.set_setting("first", "1")
    await store.set_setting("second", "2")
    assert handoffs == []  # one or two late writes are a hiccup: still on the loop's thread
    monkeypatch.setattr(sqlite_store, "INLINE_WRITE_BUDGET_S", 60.0)
    await store.set_setting("fast", "again")  # a write within the budget ends the row
    monkeypatch.setattr(sqlite_store, "INLINE_WRITE_BUDGET_S", 0.0)
    for n in range(sqlite_store.INLINE_SLOW_WRITES):
        await store.set_setting(f"slow {n}", "x")
    assert handoffs == []  # those ran on the loop's thread, each too slow
    await store.set_setting("third", "3")
    inc, events = incident()
    await store.create_incident(inc, events)
    assert len(handoffs) == 2  # the writes after them go to the writer's thread for a while
    assert await store.get_setting("first") == "1" and await store.get_setting("third") == "3"
    assert await store.get_incident(inc.id) == inc


async def test_a_store_made_without_inline_writes_hands_every_write_over(tmp_path):
    threaded = sqlite_store.SqliteStore(tmp_path / "threaded.db", inline_writes=False)
    await threaded.open()
    try:
        sent = threaded._writer_sent
        await threaded.set_setting("k", "v")
        async with threaded.transaction():
            await threaded.set_setting("a", "1")
        assert threaded._writer_sent - sent == 2 and await threaded.get_setting("a") == "1"
    finally:
        await threaded.close()


async def test_while_busy_a_write_that_waits_for_the_disk_goes_to_the_writers_thread(store, handoffs):
    busy = [True]
    store.busy_when(lambda: busy[0])
    inc, events = incident()
    await store.create_incident(inc, events)  # one write with its COMMIT, synchronous: handed over
    assert len(handoffs) == 1
    async with store.transaction():  # a commit that need not wait for the disk: still the loop's own
        store.commit_without_sync()
        await store.set_setting("relaxed", "1")
        assert await store.setting_or_default("claim", "x") == "x"
    assert len(handoffs) == 1
    async with store.transaction():  # its statements on the loop's thread, its synchronous COMMIT handed over
        await store.set_setting("a", "1")
        assert await store.setting_or_default("b", "2") == "2"
        store.commit_with_next()
        await store.set_setting("c", "3")
    assert len(handoffs) == 2
    busy[0] = False
    await store.mutate_incident(inc.id, lambda current: (current.model_copy(update={"name": "Renamed"}), []))
    assert len(handoffs) == 2  # not busy: the loop runs it itself
    assert (await store.get_incident(inc.id)).name == "Renamed"
    assert {k: await store.get_setting(k) for k in ("relaxed", "claim", "a", "b", "c")} == {
        "relaxed": "1", "claim": "x", "a": "1", "b": "2", "c": "3"}

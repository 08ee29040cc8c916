"""A transaction's last write carries its COMMIT (``Store.commit_with_next``, issue 15: CPU per start),
and an incident's checklist the store just wrote is read back without parsing it again.

On SQLite a start's dialog transaction (key, journal, name claim) costs 2 trips to the writer's thread
instead of 3, and the card's (journal removal, card post id) 1 instead of 2. Elsewhere the hint is a
no-op; everywhere the transaction keeps what it promises: all or nothing, its own writes read back,
nested blocks joined, a failing last write rolling everything back and leaving the writer usable."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from domain import checklist
from domain import incidents as ops
from domain.errors import NotFound
from domain.models import StepRef
from storage import StorageError
from storage import sqlite as sqlite_store

from .builders import T0, incident


async def test_the_last_write_commits_everything_before_it(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    async with store.transaction():
        assert await store.claim_single_use("dialog", "k", expires_at=T0 + 10, now=T0) is True
        await store.set_setting("start:a", "journal")
        store.commit_with_next()
        assert await store.setting_or_default("start-channel:t:x", "a") == "a"
    assert await store.get_setting("start:a") == "journal"
    assert await store.get_setting("start-channel:t:x") == "a"
    assert await store.claim_single_use("dialog", "k", expires_at=T0 + 10, now=T0) is False
    async with store.transaction():
        await store.delete_settings({"start:a": None, "start-channel:t:x": "a"})
        store.commit_with_next()
        saved, _ = await store.mutate_incident(inc.id, lambda current: (ops.set_card_post(current, "p" * 26), []))
    assert saved.card_post_id == "p" * 26 and saved.version == inc.version + 1
    assert await store.get_incident(inc.id) == saved
    assert await store.settings_with_prefix("start") == {}


async def test_a_failing_last_write_rolls_back_the_whole_transaction(store):
    await store.set_setting("start:old", "journal")
    with pytest.raises(NotFound):
        async with store.transaction():
            await store.delete_settings({"start:old": None})
            await store.set_setting("start:new", "journal")
            store.commit_with_next()
            await store.mutate_incident("missing", lambda current: (current, []))
    assert await store.settings_with_prefix("start") == {"start:old": "journal"}
    # Nothing was left open: the next transaction works as usual.
    async with store.transaction():
        await store.set_setting("after", "ok")
        store.commit_with_next()
        await store.set_setting("last", "ok")
    assert await store.get_setting("after") == "ok" and await store.get_setting("last") == "ok"


async def test_the_hint_in_a_nested_block_or_outside_a_transaction_changes_nothing(store):
    store.commit_with_next()  # outside any transaction: nothing to finish
    await store.set_setting("alone", "1")
    async with store.transaction():
        await store.set_setting("outer", "1")
        async with store.transaction():
            store.commit_with_next()  # only the outermost block may end the transaction
            await store.set_setting("inner", "1")
        assert await store.get_setting("inner") == "1"
        await store.set_setting("outer", "2")  # still the same, open transaction
    assert {k: await store.get_setting(k) for k in ("alone", "outer", "inner")} == {
        "alone": "1", "outer": "2", "inner": "1"}


@pytest.mark.backends("sqlite", reason="counts hand-offs to the writer's aiosqlite thread")
async def test_a_starts_transactions_cost_two_trips_and_one(store, hops):
    inc, events = incident()
    await store.create_incident(inc, events)
    hops.clear()
    async with store.transaction():  # the dialog's key, the journal, then the name's claim with the COMMIT
        assert await store.claim_single_use("dialog", "k", expires_at=T0 + 10, now=T0) is True
        await store.set_setting("start:a", "journal")
        store.commit_with_next()
        assert await store.setting_or_default("start-channel:t:x", "a") == "a"
    assert len(hops) == 2
    hops.clear()
    async with store.transaction():  # the journal's removal, then the card's post id with the COMMIT
        await store.delete_settings({"start:a": None, "start-channel:t:x": "a"})
        store.commit_with_next()
        await store.mutate_incident(inc.id, lambda current: (ops.set_card_post(current, "p" * 26), []))
    assert len(hops) == 1
    hops.clear()
    async with store.transaction():  # a last write that answers nothing: BEGIN, it and COMMIT, one trip
        store.commit_with_next()
        await store.set_setting("only", "one")
    assert len(hops) == 1
    assert (await store.get_incident(inc.id)).card_post_id == "p" * 26
    assert await store.settings_with_prefix("start") == {} and await store.get_setting("only") == "one"


@pytest.mark.backends("sqlite", reason="SQLite refuses statements after the one that committed")
async def test_nothing_may_follow_the_last_write(store):
    with pytest.raises(StorageError, match="committed with its last statement"):
        async with store.transaction():
            store.commit_with_next()
            await store.set_setting("first", "1")
            await store.set_setting("second", "2")
    # The first write was committed with its COMMIT; the refused one never ran.
    assert await store.get_setting("first") == "1" and await store.get_setting("second") is None
    for late in (lambda: store.get_setting("first"), lambda: store.setting_or_default("x", "y")):
        with pytest.raises(StorageError):
            async with store.transaction():
                store.commit_with_next()
                await store.set_setting("again", "1")
                await late()
    async with store.transaction():
        await store.set_setting("after", "ok")
    assert await store.get_setting("after") == "ok"


@pytest.mark.backends("sqlite", reason="a cancelled trip to the writer's thread")
async def test_cancelled_during_its_last_write_the_transaction_is_all_or_nothing(store):
    for _ in range(5):
        async def start(n: int) -> None:
            async with store.transaction():
                await store.set_setting(f"start:{n}", "journal")
                store.commit_with_next()
                await store.setting_or_default(f"start-channel:{n}", "held")

        tasks = [asyncio.create_task(start(n)) for n in range(4)]
        await asyncio.sleep(0)  # each has queued its work, or is about to
        for task in tasks[::2]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        kept = await store.settings_with_prefix("start")
        for n in range(4):
            # Either both writes of a start are there or neither is.
            assert (f"start:{n}" in kept) == (f"start-channel:{n}" in kept), kept
        await store.delete_settings(dict.fromkeys(kept))
    await store.set_setting("after", "ok")
    assert await store.get_setting("after") == "ok"


# The checklist the store just wrote -----------------------------------------------------------

async def test_a_written_checklist_is_read_back_equal_to_a_parsed_one(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    checked, more = checklist.check_step(inc, StepRef(0, 1), "bob", T0 + 1)
    saved = await store.update_incident(checked, more)
    mutated, _ = await store.mutate_incident(inc.id, lambda current: checklist.check_step(
        current, StepRef(1, 0), "carol", T0 + 2))
    for written in (inc, saved, mutated):
        text = sqlite_store._incident_stages_json(written.stages)
        # What is kept for the text is what parsing the text gives (nothing is taken on trust).
        assert sqlite_store._STAGES.validate_json(text) == written.stages
    loaded = await store.get_incident(inc.id)
    assert loaded == mutated and loaded.step(StepRef(0, 1)).done and loaded.step(StepRef(1, 0)).done


def test_only_changed_columns_are_encoded_and_written():
    inc, _ = incident()
    checked, _ = checklist.check_step(inc, StepRef(0, 1), "bob", T0 + 1)
    carded = ops.set_card_post(inc, "p" * 26)
    before = sqlite_store._mutable_incident_columns(inc)
    for after in (checked, carded, inc):
        now = sqlite_store._mutable_incident_columns(after)
        assert sqlite_store._changed_incident_columns(after, inc) == {
            column: value for column, value in now.items() if before[column] != value}
    assert set(sqlite_store._changed_incident_columns(carded, inc)) == {"card_post_id"}


def test_the_kept_checklists_are_bounded():
    inc, _ = incident()
    for n in range(sqlite_store.STAGES_KEPT + 10):
        renamed = tuple(stage.model_copy(update={"title": f"Stage {n}"}) for stage in inc.stages)
        text = sqlite_store._incident_stages_json(renamed)
        assert sqlite_store._stages(text) is sqlite_store._STAGES_KEPT[text]
    assert len(sqlite_store._STAGES_KEPT) <= sqlite_store.STAGES_KEPT


# Point reads on the event loop's own thread ------------------------------------------------------

@pytest.fixture
def reader_hops(monkeypatch) -> list[object]:
    """Every call handed to any aiosqlite connection's thread."""
    import aiosqlite

    seen: list[object] = []
    real = aiosqlite.Connection._execute

    async def counting(self, fn, *args, **kwargs):
        seen.append(fn)
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return seen


async def test_point_reads_see_every_commit_and_a_transaction_its_own_writes(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    assert await store.get_incident(inc.id) == inc and await store.incident_by_channel(inc.channel_id) == inc
    assert await store.incident_version(inc.id) == inc.version
    saved, _ = await store.mutate_incident(inc.id, lambda current: (ops.set_card_post(current, "p" * 26), []))
    assert await store.get_incident(inc.id) == saved  # the commit just made, at once
    async with store.transaction():
        await store.set_setting("k", "inside")
        assert await store.get_setting("k") == "inside"  # its own uncommitted write
        moved, _ = await store.mutate_incident(inc.id, lambda current: (ops.set_card_post(current, "q" * 26), []))
        assert (await store.get_incident(inc.id)).card_post_id == "q" * 26
    assert await store.get_setting("k") == "inside" and await store.get_incident(inc.id) == moved


@pytest.mark.backends("sqlite", reason="counts hand-offs to aiosqlite threads")
async def test_point_reads_make_no_trip_and_a_busy_database_sends_them_to_a_reader(store, reader_hops):
    inc, events = incident()
    await store.create_incident(inc, events)
    await store.set_setting("k", "v")
    reader_hops.clear()
    assert await store.get_incident(inc.id) == inc and await store.get_setting("k") == "v"
    assert await store.incident_by_channel(inc.channel_id) == inc and await store.events_about(inc.id, "x") == []
    assert reader_hops == []

    class Busy:
        def execute(self, *args):
            raise sqlite3.OperationalError("database is locked")

    store._inline, inline = Busy(), store._inline
    try:
        assert await store.get_incident(inc.id) == inc and len(reader_hops) == 1  # a reader thread waited for it
    finally:
        store._inline = inline

    # On another thread (a store shared across event loops) the loop's reader is not used.
    def elsewhere() -> object:
        return asyncio.run(store._fetch_point("SELECT value FROM settings WHERE key = ?", ("k",)))

    reader_hops.clear()
    rows = await asyncio.to_thread(elsewhere)
    assert [row["value"] for row in rows] == ["v"] and len(reader_hops) == 1


# A commit that need not wait for the disk ---------------------------------------------------------

async def synchronous_level(store) -> int:
    return (await store._writer.execute_fetchall("PRAGMA synchronous"))[0][0]


async def test_a_commit_without_sync_keeps_all_or_nothing(store):
    inc, events = incident()
    async with store.transaction():
        store.commit_without_sync()
        await store.create_incident(inc, events)
        await store.set_setting("start:a", "journal")
    assert await store.get_incident(inc.id) == inc and await store.get_setting("start:a") == "journal"
    with pytest.raises(RuntimeError):
        async with store.transaction():
            store.commit_without_sync()
            await store.set_setting("start:b", "journal")
            raise RuntimeError("boom")
    assert await store.get_setting("start:b") is None


@pytest.mark.backends("sqlite", reason="SQLite's synchronous level around one commit")
async def test_only_that_commit_skips_the_sync_and_the_level_comes_back(store):
    assert await synchronous_level(store) == 2  # FULL
    statements: list[str] = []
    await store._writer._execute(lambda: store._writer._conn.set_trace_callback(statements.append))
    try:
        for how in ("commit", "last write", "rollback", "failing last write", "read first"):
            statements.clear()
            try:
                async with store.transaction():
                    store.commit_without_sync()
                    if how == "read first":
                        assert await store.get_setting("x") is None
                        await store.claim_single_use("dialog", how, expires_at=T0 + 10, now=T0)
                    if how in ("last write", "failing last write"):
                        store.commit_with_next()
                    if how == "failing last write":
                        await store.mutate_incident("missing", lambda current: (current, []))
                    await store.set_setting(f"k:{how}", "v")
                    if how == "rollback":
                        await store.setting_or_default("begun", "so there is something to roll back")
                        raise RuntimeError(how)
            except (RuntimeError, NotFound):
                assert how in ("rollback", "failing last write")
            # (without the busy timeout the event loop's own writes set around themselves: see _writer_trip)
            upper = [s.strip().upper() for s in statements if not s.upper().startswith("PRAGMA BUSY_TIMEOUT")]
            assert upper[0] == "PRAGMA SYNCHRONOUS = NORMAL" and upper[1].startswith("BEGIN"), (how, upper)
            assert upper[-1] == "PRAGMA SYNCHRONOUS = FULL", (how, upper)
            assert await synchronous_level(store) == 2, how
        # A transaction without the hint, and a hint given too late, leave the level alone.
        statements.clear()
        async with store.transaction():
            await store.set_setting("plain", "v")
        async with store.transaction():
            assert await store.setting_or_default("plain", "x") == "v"  # begun: the BEGIN has gone
            store.commit_without_sync()
            await store.set_setting("plain", "w")
        assert not any("SYNCHRONOUS" in s.upper() for s in statements)
    finally:
        await store._writer._execute(lambda: store._writer._conn.set_trace_callback(None))
    assert await store.get_setting("k:commit") == "v" and await store.get_setting("k:rollback") is None
    assert await store.get_setting("k:failing last write") is None and await store.get_setting("plain") == "w"
    assert await store.get_setting("begun") is None

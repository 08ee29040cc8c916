"""Issue 16, the in-memory store: semantics every backend must share (run on each), and what is
particular to ``memory://`` URLs."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

from domain import checklist
from domain.errors import Conflict, NotFound
from domain.models import StepRef
from storage import StorageError, UnsupportedDatabaseURL, create_store, open_store
from storage.base import IncidentSort
from storage.memory import MemoryStore

from .builders import T0, incident, playbook

# -- on every backend ----------------------------------------------------------------------------


async def test_callers_cannot_change_stored_state_through_their_models(store):
    inc, events = incident()
    members = ["alice", "bob", "alice"]
    pb = await store.create_playbook(playbook().model_copy(update={"member_ids": members}))
    members.append("mallory")  # the list given to the store, changed after the write
    assert (await store.get_playbook(pb.id)).member_ids == ("alice", "bob")  # stored once each, in order

    await store.create_incident(inc, events)
    _, run = checklist.run_step(
        checklist.add_step(inc, 0, "Run it", "bob", T0, command="/echo x")[0], StepRef(0, 3), "bob", T0 + 1
    )
    await store.append_events(run)
    run[0].details["command"] = "/changed after the write"
    read = await store.timeline(inc.id)
    read[1].details["command"] = "/changed after the read"
    assert (await store.timeline(inc.id))[1].details == {**run[0].details, "command": "/echo x"}


async def test_an_update_keeps_what_never_changes(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    moved = inc.model_copy(update={"team_id": "other", "creator_id": "mallory", "created_at": 1, "name": "Renamed"})
    await store.update_incident(moved)
    stored = await store.get_incident(inc.id)
    assert (stored.team_id, stored.creator_id, stored.created_at) == (inc.team_id, inc.creator_id, inc.created_at)
    assert stored.name == "Renamed" and stored.version == inc.version + 1


async def test_names_sort_and_match_ignoring_ascii_case_only(store):
    names = ["beta", "émile", "Alpha", "Émile", "alpha2", "BETA"]
    for n, name in enumerate(names):
        await store.create_incident(*incident(name=name, now=T0 + n))
    ascending = await store.list_incidents("team1", is_admin=True, sort=IncidentSort.NAME_ASC)
    # Equal names (ignoring ASCII case) keep the order they were stored in; É and é differ.
    assert [i.name for i in ascending.items] == ["Alpha", "alpha2", "beta", "BETA", "Émile", "émile"]
    descending = await store.list_incidents("team1", is_admin=True, sort=IncidentSort.NAME_DESC)
    assert [i.name for i in descending.items] == ["émile", "Émile", "BETA", "beta", "alpha2", "Alpha"]
    found = await store.list_incidents("team1", is_admin=True, search=" ÉMILE ")
    assert [i.name for i in found.items] == ["Émile"]
    assert (await store.list_incidents("team1", is_admin=True, search="ALPHA")).total == 2
    assert (await store.list_incidents("team1", is_admin=True, search="   ")).total == len(names)


async def test_equal_creation_times_keep_the_order_of_storing(store):
    made = []
    for n in range(4):
        inc, events = incident(name=f"same time {n}", now=T0)
        await store.create_incident(inc, events)
        made.append(inc.id)
    await store.delete_incident(made[1])
    last, last_events = incident(name="stored last", now=T0)
    await store.create_incident(last, last_events)
    expected = [made[0], made[2], made[3], last.id]
    oldest = await store.list_incidents("team1", is_admin=True, sort=IncidentSort.CREATED_ASC)
    assert [i.id for i in oldest.items] == expected
    newest = await store.list_incident_refs("team1", is_admin=True)
    assert [r.id for r in newest.items] == expected[::-1]
    assert [i.id for i in await store.incidents_without_card()] == expected


async def test_settings_prefix_is_exact(store):
    for key in ("start:a", "START:b", "start-channel:c", "star", "start:\\%_"):
        await store.set_setting(key, key.upper())
    assert await store.settings_with_prefix("start:") == {"start:\\%_": "START:\\%_", "start:a": "START:A"}
    assert await store.settings_with_prefix("start:\\%") == {"start:\\%_": "START:\\%_"}
    assert list(await store.settings_with_prefix("")) == sorted(["start:a", "START:b", "start-channel:c", "star",
                                                                  "start:\\%_"])


async def test_playbook_version_checks(store):
    pb = await store.create_playbook(playbook())
    with pytest.raises(Conflict, match="already exists"):
        await store.create_playbook(pb)
    saved = await store.update_playbook(pb.model_copy(update={"title": "New", "team_id": "elsewhere"}))
    assert (await store.get_playbook(pb.id)).team_id == pb.team_id
    with pytest.raises(Conflict):
        await store.update_playbook(pb)  # based on the old version
    with pytest.raises(Conflict):
        await store.delete_playbook(pb.id, expected_version=pb.version)
    assert await store.delete_playbook(pb.id, expected_version=saved.version) is True
    assert await store.delete_playbook(pb.id) is False
    with pytest.raises(NotFound):
        await store.update_playbook(saved)


async def test_pruning_drops_the_soonest_expiring_first_and_ties_by_kind_then_key(store):
    for kind, key, expires in [("b", "1", 5), ("a", "2", 5), ("a", "1", 5), ("a", "0", 9), ("z", "old", 1)]:
        assert await store.claim_single_use(kind, key, expires_at=T0 + expires, now=T0)
    assert await store.prune_single_use(T0 + 2, max_entries=2) == 3  # "old" expired, then a/1 and a/2
    assert not await store.claim_single_use("b", "1", expires_at=T0 + 20, now=T0 + 3)  # kept
    assert not await store.claim_single_use("a", "0", expires_at=T0 + 20, now=T0 + 3)  # kept
    assert await store.claim_single_use("a", "1", expires_at=T0 + 20, now=T0 + 3)  # pruned: free again


async def test_an_open_transaction_holds_writers_back_and_readers_see_the_last_commit(store):
    await store.set_setting("k", "committed")
    inside, release = asyncio.Event(), asyncio.Event()
    inc, events = incident()

    async def writer() -> None:
        async with store.transaction():
            await store.set_setting("k", "uncommitted")
            await store.create_incident(inc, events)
            inside.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await asyncio.wait_for(inside.wait(), timeout=10)
    assert await store.get_setting("k") == "committed"
    assert await store.get_incident(inc.id) is None
    other = asyncio.create_task(store.set_setting("k", "after"))
    for _ in range(5):
        await asyncio.sleep(0)  # scheduling points: the other writer gets every chance to run, and must wait
    assert not other.done()
    release.set()
    await asyncio.wait_for(asyncio.gather(task, other), timeout=10)
    assert await store.get_setting("k") == "after"
    assert await store.get_incident(inc.id) == inc


async def test_calls_before_open_or_after_close_are_refused(store_factory):
    fresh = store_factory()
    with pytest.raises(StorageError, match="not open"):
        await fresh.get_incident("x")
    await fresh.open()
    await fresh.set_setting("k", "v")
    await fresh.close()
    with pytest.raises(StorageError, match="not open"):
        await fresh.set_setting("k", "w")


# -- memory:// ---------------------------------------------------------------------------------------


async def test_memory_urls():
    private = await open_store("memory://")
    other = await open_store("MEMORY://")
    try:
        assert isinstance(private, MemoryStore)
        await private.set_setting("k", "mine")
        assert await other.get_setting("k") is None  # memory:// is a database of its own
        assert await private.schema_version() == await _latest_sqlite_version()
    finally:
        await private.close()
        await other.close()
    with pytest.raises(UnsupportedDatabaseURL, match="no options"):
        create_store("memory://x?synchronous=full")


async def test_a_named_memory_database_is_shared_while_a_store_holds_it():
    first = await open_store("memory://shared-test-db")
    await first.set_setting("k", "v")
    second = await open_store("memory://shared-test-db")
    assert await second.get_setting("k") == "v"
    await first.close()
    await second.close()
    del first, second
    again = await open_store("memory://shared-test-db")
    assert await again.get_setting("k") is None  # nothing held it: it is gone, like the process's memory
    await again.close()


def test_the_memory_store_does_not_use_sqlite():
    tree = ast.parse(Path(__file__).parents[2].joinpath("storage", "memory.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"sqlite3", "aiosqlite"}
    assert not {"threading", "time"} & imported  # no threads, no sleeping


async def _latest_sqlite_version() -> int:
    from storage import migrations

    return len(migrations.load("sqlite"))


async def test_a_rolled_back_transaction_leaves_existing_timelines_and_settings_as_they_were(store):
    inc, events = incident()
    await store.create_incident(inc, events)
    await store.set_setting("k", "before")
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.mutate_incident(inc.id, lambda i: checklist.check_step(i, StepRef(0, 0), "bob", T0 + 1))
            await store.set_setting("k", "during")
            await store.delete_setting("k")
            assert len(await store.timeline(inc.id)) == 2
            raise RuntimeError("roll back")
    assert [e.id for e in await store.timeline(inc.id)] == [events[0].id]
    assert await store.get_setting("k") == "before"
    assert await store.get_incident(inc.id) == inc

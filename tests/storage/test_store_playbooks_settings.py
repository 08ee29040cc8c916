"""Playbooks and settings, on every backend."""

from __future__ import annotations

import pytest

from domain import playbooks
from domain.errors import Conflict, NotFound

from .builders import T0, incident, playbook


async def test_create_get_roundtrip(store):
    pb = playbooks.add_members(playbook(description="How we respond"), ["bob"], T0)
    assert await store.create_playbook(pb) == pb
    assert await store.get_playbook(pb.id) == pb
    assert await store.get_playbook("nope") is None
    with pytest.raises(Conflict):
        await store.create_playbook(pb)


async def test_update_with_version_check(store):
    pb = await store.create_playbook(playbook())
    edited = playbooks.edit_playbook(pb, now=T0 + 1, title="Renamed")
    edited = playbooks.remove_members(playbooks.add_members(edited, ["bob", "carol"], T0), ["alice"], T0)
    saved = await store.update_playbook(edited)
    assert saved.version == pb.version + 1
    assert await store.get_playbook(pb.id) == saved
    assert saved.member_ids == ("bob", "carol")
    stale = playbooks.edit_playbook(pb, now=T0 + 2, title="Stale edit")
    with pytest.raises(Conflict, match="Someone else changed this playbook"):
        await store.update_playbook(stale)
    assert (await store.get_playbook(pb.id)).title == "Renamed"
    await store.delete_playbook(pb.id)
    with pytest.raises(NotFound):
        await store.update_playbook(saved)


async def test_delete_keeps_incidents(store):
    pb = await store.create_playbook(playbook())
    inc, events = incident(pb)
    await store.create_incident(inc, events)
    with pytest.raises(Conflict):
        await store.delete_playbook(pb.id, expected_version=pb.version + 5)
    assert await store.delete_playbook(pb.id, expected_version=pb.version) is True
    assert await store.delete_playbook(pb.id) is False
    assert await store.get_playbook(pb.id) is None
    kept = await store.get_incident(inc.id)
    assert kept == inc and kept.playbook_title == pb.title


async def test_playbooks_for_user_team_scoped_sorted_members_only(store):
    zed = await store.create_playbook(playbook(title="zed", member_ids=["bob"]))
    alpha = await store.create_playbook(playbook(title="Alpha"))
    await store.create_playbook(playbook(title="Other team", team_id="team2", member_ids=["bob"]))
    mine = await store.playbooks_for_user("team1", "alice")
    assert [p.title for p in mine] == ["Alpha", "zed"]
    assert [p.id for p in await store.playbooks_for_user("team1", "bob")] == [zed.id]
    assert await store.playbooks_for_user("team1", "carol") == []
    assert [p.id for p in await store.playbooks_for_user("team1", "root", is_admin=True)] == [alpha.id, zed.id]


async def test_settings(store):
    assert await store.get_setting("diagnostic_id") is None
    assert await store.setting_or_default("diagnostic_id", "first") == "first"
    assert await store.setting_or_default("diagnostic_id", "second") == "first"
    await store.set_setting("diagnostic_id", "third")
    assert await store.get_setting("diagnostic_id") == "third"


async def test_settings_by_prefix_and_delete(store):
    await store.set_setting("start:a", "1")
    await store.set_setting("start:b", "2")
    await store.set_setting("start_x", "3")  # "_" is not a wildcard
    await store.set_setting("other", "4")
    assert await store.settings_with_prefix("start:") == {"start:a": "1", "start:b": "2"}
    assert await store.settings_with_prefix("start_") == {"start_x": "3"}
    assert await store.delete_setting("start:a") is True
    assert await store.delete_setting("start:a") is False
    assert await store.settings_with_prefix("start:") == {"start:b": "2"}


async def test_data_survives_reopening(store, store_factory):
    pb = await store.create_playbook(playbook())
    await store.set_setting("k", "v")
    await store.close()
    reopened = store_factory()
    async with reopened:
        assert await reopened.get_playbook(pb.id) == pb
        assert await reopened.get_setting("k") == "v"

"""A playbook row is parsed once (issue 15, bot CPU per start): a start reads its playbook three times and
parsing its stages was a twentieth of the bot's CPU. A changed playbook is never served from before."""

from __future__ import annotations

import asyncio

from .builders import playbook


async def test_an_unchanged_playbook_is_parsed_once(store):
    pb = await store.create_playbook(playbook(member_ids=["alice"]))
    first = await store.get_playbook(pb.id)
    assert first == pb
    assert await store.get_playbook(pb.id) is first  # the same (frozen) object: not parsed again
    assert (await store.playbooks_for_user(pb.team_id, "alice"))[0] is first


async def test_a_changed_playbook_is_read_as_changed(store):
    pb = await store.create_playbook(playbook(member_ids=["alice"]))
    before = await store.get_playbook(pb.id)
    renamed = await store.update_playbook(pb.model_copy(update={"title": "Renamed", "member_ids": ("bob",)}))
    after = await store.get_playbook(pb.id)
    assert after == renamed and after.title == "Renamed" and after.member_ids == ("bob",)
    assert after.version == before.version + 1
    assert await store.playbooks_for_user(pb.team_id, "alice") == []
    assert await store.delete_playbook(pb.id)
    assert await store.get_playbook(pb.id) is None


async def test_two_playbooks_alike_but_for_their_ids_stay_apart(store):
    one = await store.create_playbook(playbook(title="Same", member_ids=["alice"]))
    two = await store.create_playbook(playbook(title="Same", member_ids=["alice"]))
    read = await asyncio.gather(store.get_playbook(one.id), store.get_playbook(two.id))
    assert [p.id for p in read] == [one.id, two.id]

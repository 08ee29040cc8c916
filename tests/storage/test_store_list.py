"""The incident list: visibility, filters, sorting and paging, on every backend."""

from __future__ import annotations

import pytest

from domain import incidents
from domain.errors import ValidationError
from domain.models import IncidentStatus
from storage import IncidentSort

from .builders import T0, incident, playbook


@pytest.fixture
async def seeded(store):
    """Ten incidents in team1 (every third private, every fourth ended) and one in team2."""
    pb_a = await store.create_playbook(playbook(title="A"))
    pb_b = await store.create_playbook(playbook(title="B"))
    made = []
    names = ["DB down", "API 500s", "Cache miss storm", "db replica lag", "100% CPU", "Disk_full", "Queue stuck",
             "Login broken", "Auth errors", "DNS flaps"]
    for n, name in enumerate(names):
        inc, events = incident(
            pb_a if n % 2 == 0 else pb_b,
            name=name,
            creator="alice" if n < 5 else "bob",
            public=n % 3 != 0,
            now=T0 + n * 1000,
        )
        if n % 4 == 0:
            inc, more = incidents.end_incident(inc, "alice", T0 + 100_000 - n)
            events += more
        await store.create_incident(inc, events)
        made.append(inc)
    other, events = incident(playbook(team_id="team2"), name="Elsewhere")
    await store.create_incident(other, events)
    return made, pb_a, pb_b


def names(page):
    return [i.name for i in page.items]


async def test_visibility(store, seeded):
    made, _, _ = seeded
    public = [i for i in made if i.public]
    private = [i for i in made if not i.public]
    page = await store.list_incidents("team1", per_page=100)
    assert {i.id for i in page.items} == {i.id for i in public} and page.total == len(public)
    mine = await store.list_incidents("team1", viewer_channel_ids=[private[0].channel_id, "unrelated"], per_page=100)
    assert {i.id for i in mine.items} == {i.id for i in public} | {private[0].id}
    admin = await store.list_incidents("team1", is_admin=True, per_page=100)
    assert admin.total == 10 and {i.team_id for i in admin.items} == {"team1"}
    assert (await store.list_incidents("team3", is_admin=True)).total == 0


async def test_many_viewer_channels(store, seeded):
    made, _, _ = seeded
    channels = [f"other{n}" for n in range(5000)] + [i.channel_id for i in made]
    page = await store.list_incidents("team1", viewer_channel_ids=channels, per_page=100)
    assert page.total == 10


async def test_filters(store, seeded):
    _, pb_a, _ = seeded
    everyone = {"is_admin": True, "per_page": 100}
    ongoing = await store.list_incidents("team1", status=IncidentStatus.ONGOING, **everyone)
    assert ongoing.total == 7 and all(i.is_ongoing for i in ongoing.items)
    ended = await store.list_incidents("team1", status=IncidentStatus.ENDED, **everyone)
    assert ended.total == 3 and not any(i.is_ongoing for i in ended.items)
    bobs = await store.list_incidents("team1", commander_id="bob", **everyone)
    assert bobs.total == 5 and {i.commander_id for i in bobs.items} == {"bob"}
    from_a = await store.list_incidents("team1", playbook_id=pb_a.id, **everyone)
    assert from_a.total == 5 and {i.playbook_id for i in from_a.items} == {pb_a.id}
    combined = await store.list_incidents(
        "team1", status=IncidentStatus.ONGOING, commander_id="alice", playbook_id=pb_a.id, **everyone
    )
    assert names(combined) == ["Cache miss storm"]


async def test_search_is_case_insensitive_and_literal(store, seeded):
    admin = {"is_admin": True, "per_page": 100}
    assert set(names(await store.list_incidents("team1", search="db", **admin))) == {"DB down", "db replica lag"}
    assert names(await store.list_incidents("team1", search="100%", **admin)) == ["100% CPU"]
    assert names(await store.list_incidents("team1", search="k_f", **admin)) == ["Disk_full"]
    assert names(await store.list_incidents("team1", search="%", **admin)) == ["100% CPU"]
    assert (await store.list_incidents("team1", search="elsewhere", **admin)).total == 0


async def test_sorting(store, seeded):
    made, _, _ = seeded
    admin = {"is_admin": True, "per_page": 100}
    newest = await store.list_incidents("team1", **admin)
    assert [i.id for i in newest.items] == [i.id for i in reversed(made)]
    oldest = await store.list_incidents("team1", sort=IncidentSort.CREATED_ASC, **admin)
    assert [i.id for i in oldest.items] == [i.id for i in made]
    by_name = names(await store.list_incidents("team1", sort=IncidentSort.NAME_ASC, **admin))
    assert by_name == sorted(by_name, key=str.lower)
    assert names(await store.list_incidents("team1", sort=IncidentSort.NAME_DESC, **admin)) == by_name[::-1]


async def test_paging(store, seeded):
    made, _, _ = seeded
    pages = [await store.list_incidents("team1", is_admin=True, page=p, per_page=4) for p in range(4)]
    assert [len(p.items) for p in pages] == [4, 4, 2, 0]
    assert {p.total for p in pages} == {10}
    assert [i.id for p in pages for i in p.items] == [i.id for i in reversed(made)]
    with pytest.raises(ValidationError, match="Page numbers start at 1"):
        await store.list_incidents("team1", page=-1)
    with pytest.raises(ValidationError, match="1 to 100"):
        await store.list_incidents("team1", per_page=0)


async def test_list_sees_updates(store, seeded):
    made, _, _ = seeded
    target = next(i for i in made if i.is_ongoing)
    await store.mutate_incident(target.id, lambda i: incidents.end_incident(i, "bob", T0 + 500_000))
    ongoing = await store.list_incidents("team1", status=IncidentStatus.ONGOING, is_admin=True, per_page=100)
    assert target.id not in {i.id for i in ongoing.items} and ongoing.total == 6


async def test_list_sees_commander_changes_made_through_mutate(store, seeded):
    made, _, _ = seeded
    target = next(i for i in made if i.is_ongoing and i.commander_id == "alice")
    saved, _ = await store.mutate_incident(
        target.id,
        lambda i: incidents.change_commander(i, "carol", "alice", T0 + 1, new_commander_in_channel=True),
    )
    assert await store.get_incident(target.id) == saved
    carols = await store.list_incidents("team1", commander_id="carol", is_admin=True)
    assert [i.id for i in carols.items] == [target.id] and carols.items[0] == saved

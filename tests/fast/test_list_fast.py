"""The incident list on the fake Mattermost: who sees what, and paging."""

from __future__ import annotations

from services.history import PER_PAGE


def rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| **")]


async def test_a_team_member_outside_the_channel_sees_public_incidents_only(fast):
    await fast.start(name="Public trouble")
    await fast.start(name="Private trouble", playbook=await fast.playbook("Secret", public=False))
    seen = rows((await fast.slash(fast.people.carol, fast.town, "list")).text)
    assert [r.split("**")[1] for r in seen] == ["Public trouble"]


async def test_members_and_admins_see_private_incidents_too(fast):
    await fast.start(name="Private trouble", playbook=await fast.playbook("Secret", public=False))
    assert len(rows((await fast.slash(fast.people.alice, fast.town, "list")).text)) == 1
    assert len(rows((await fast.slash(fast.people.admin, fast.town, "list")).text)) == 1


async def test_someone_from_another_team_is_refused_the_teams_list(fast):
    await fast.start(name="Public trouble")
    lobby = next(c for c in fast.mm.channels.values() if c.name == "lobby")
    reply = await fast.slash(fast.people.dave, lobby, "list", team=fast.acme)
    assert rows(reply.text) == [] and "not a member of this team" in reply.text


async def test_paging_walks_every_visible_incident_once(fast):
    playbook = await fast.playbook()
    names = [f"Incident {n:02d}" for n in range(PER_PAGE + 2)]
    for name in names:
        await fast.start(name=name, playbook=playbook)
    first = await fast.slash(fast.people.carol, fast.town, "list")
    assert len(rows(first.text)) == PER_PAGE
    assert [b["name"] for a in first.attachments for b in a["actions"]] == ["Next ▶"]
    second = await fast.slash(fast.people.carol, fast.town, "list --page 2")
    shown = [r.split("**")[1] for r in rows(first.text) + rows(second.text)]
    assert sorted(shown) == sorted(names) and len(shown) == len(set(shown))


async def test_a_private_incident_is_left_out_of_every_page_for_a_non_member(fast):
    public, private = await fast.playbook(), await fast.playbook("Secret", public=False)
    for n in range(PER_PAGE):
        await fast.start(name=f"Open {n:02d}", playbook=public)
    await fast.start(name="Hidden", playbook=private)
    texts = [(await fast.slash(fast.people.carol, fast.town, f"list --page {page}")).text for page in (1, 2)]
    assert all("Hidden" not in text for text in texts)
    assert sum(len(rows(text)) for text in texts) == PER_PAGE

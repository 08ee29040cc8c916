"""Stats and the report on the fake Mattermost: the calls they make (a report is one upload then one
post in the asker's DM; stats read nothing per incident), and who gets what."""

from __future__ import annotations

from domain import incidents as ops


async def _incidents(fast, count: int, *, private_every: int = 3) -> None:
    public, secret = await fast.playbook("Outage"), await fast.playbook("Secret", public=False)
    for n in range(count):
        incident = await fast.start(name=f"Incident {n:02d}", playbook=secret if n % private_every == 0 else public)
        if n % 2:
            await fast.store.mutate_incident(incident.id, lambda i: ops.end_incident(i, i.commander_id,
                                                                                     i.created_at + 60_000))


async def _stats_calls(fast) -> tuple[str, list[str]]:
    fast.mm.calls.clear()
    reply = await fast.slash(fast.people.carol, fast.town, "stats")
    return reply.text, fast.mm.methods()


async def test_stats_ask_mattermost_only_who_the_viewer_is_and_which_private_channels_they_are_in(fast):
    await _incidents(fast, 3)
    few_text, few = await _stats_calls(fast)
    await _incidents(fast, 27)
    many_text, many = await _stats_calls(fast)
    assert "**2** incidents" in few_text  # carol is in no private channel: 2 of the 3 are public
    assert "**20** incidents" in many_text  # 2 + 18
    # Nothing is read per incident: the team check, and the membership of each private channel from the
    # directory (without a live WebSocket, as here, it asks each time; live, it keeps the member lists).
    assert set(few) <= {"get_user", "get_team_member", "get_channel_member"}, few
    assert set(many) <= {"get_user", "get_team_member", "get_channel_member"}, many
    assert (few.count("get_channel_member"), many.count("get_channel_member")) == (1, 10)


async def test_a_report_is_uploaded_then_posted_in_the_askers_dm(fast):
    incident = await fast.start(name="Checkout errors")
    channel = fast.channel_of(incident)
    fast.mm.calls.clear()
    reply = await fast.slash(fast.people.alice, channel, "report")
    assert "I sent you the report of **Checkout errors**" in reply.text
    methods = fast.mm.methods()
    assert methods.index("upload_file") < len(methods) - 1 and methods[-1] == "create_post"
    (post,) = [p for p in fast.mm.dms_to(fast.people.alice) if p.file_ids]
    info, data = fast.mm.files[post.file_ids[0]]
    assert info.name.endswith(".md") and data.decode().startswith("# Incident report: Checkout errors")


async def test_a_private_incidents_report_is_refused_to_a_non_member(fast):
    incident = await fast.start(name="Secret trouble", playbook=await fast.playbook("Secret", public=False))
    fast.mm.calls.clear()
    reply = await fast.slash(fast.people.carol, fast.town, 'report "Secret trouble"')
    assert 'No incident called "Secret trouble" that you can see' in reply.text
    assert "upload_file" not in fast.mm.methods()
    assert not [p for p in fast.mm.dms_to(fast.people.carol) if p.file_ids]
    assert incident.public is False

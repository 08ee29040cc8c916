"""Hostile and odd input on the fake Mattermost: forged buttons, other people's dialogs, markup in
names, permissions (non-member, other team, viewer)."""

from __future__ import annotations

import pytest

from gateway.signing import SignatureError


async def test_a_button_signed_for_another_channel_is_refused(fast):
    incident = await fast.start()
    card = fast.card_of(incident)
    moved = card.model_copy(update={"channel_id": fast.town.id})  # the same context sent from elsewhere
    with pytest.raises(SignatureError):
        await fast.click(fast.people.alice, moved, "Check")
    assert not (await fast.fresh(incident)).stages[0].steps[0].done


async def test_a_dialog_opened_for_one_user_cannot_be_submitted_by_another(fast):
    playbook = await fast.playbook()
    await fast.slash(fast.people.alice, fast.town, "start Mine")
    with pytest.raises(SignatureError):
        await fast.submit(fast.people.bob, fast.mm.dialogs[-1], {"playbook": playbook.id, "name": "Stolen"})
    assert fast.mm.count("create_channel") == 0


async def test_markup_and_mentions_in_a_name_are_neutralised_everywhere_they_are_posted(fast):
    incident = await fast.start(name="@channel **boom** <!here>")
    channel = fast.channel_of(incident)
    texts = [p.message for p in fast.mm.posts_in(channel.id)] + [p.message for p in fast.mm.dms_to(fast.people.alice)]
    assert texts and all("@channel" not in text and "<!here>" not in text for text in texts)


async def test_an_unknown_subcommand_answers_with_help_and_calls_nothing(fast):
    fast.mm.calls.clear()
    reply = await fast.slash(fast.people.alice, fast.town, "drop table incidents")
    assert "is not a Command Center command" in reply.text
    assert fast.mm.calls == []


async def test_a_step_reference_out_of_range_is_refused_without_a_change(fast):
    incident = await fast.start()
    fast.mm.calls.clear()
    reply = await fast.slash(fast.people.alice, fast.channel_of(incident), "check 9.9")
    assert reply.text and "9.9" in reply.text
    assert fast.mm.count("patch_post") == 0


async def test_a_viewer_of_a_public_incident_may_read_but_not_change_it(fast):
    incident = await fast.start()
    channel = fast.channel_of(incident)
    info = await fast.slash(fast.people.carol, fast.town, "info ~" + channel.name)
    assert "Checkout errors" in info.text
    reply = await fast.slash(fast.people.carol, channel, "check 1.1")
    assert reply.text.startswith("Only members of the incident channel")


async def test_announce_only_where_the_user_is_a_member(fast):
    incident = await fast.start()
    fast.mm.add_channel(fast.acme, "ops", [fast.people.bob], bot_in=False)
    reply = await fast.slash(fast.people.alice, fast.channel_of(incident), "announce ~town-square ~ops ~nowhere")
    assert reply.text.startswith("Announced in ~town-square.")
    assert "~ops: you can only announce in channels you are a member of" in reply.text
    assert "~nowhere: no such channel" in reply.text
    ops = fast.mm.channel_by_name_in(fast.acme, "ops")
    assert ops is not None and fast.mm.user_id not in fast.mm.channel_members_of[ops.id]  # joined, then left
    assert [p.message for p in fast.mm.posts_in(ops.id)] == []


async def test_someone_from_another_team_cannot_start_in_this_team(fast):
    await fast.playbook()
    lobby = next(c for c in fast.mm.channels.values() if c.name == "lobby")
    reply = await fast.slash(fast.people.dave, lobby, "start Sneaky", team=fast.other)
    assert fast.mm.count("create_channel") == 0
    assert reply.text  # no playbook of acme is offered in the other team
    assert all(d.dialog["callback_id"] != "start" for d in fast.mm.dialogs)

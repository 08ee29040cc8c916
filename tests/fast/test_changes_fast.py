"""Changing an incident on the fake Mattermost: check/uncheck, assign, stages, commander, end/restart,
and the card that follows every change."""

from __future__ import annotations

from domain.models import IncidentStatus


async def test_check_by_command_marks_the_step_announces_it_and_edits_the_card(fast):
    incident = await fast.start()
    channel = fast.channel_of(incident)
    fast.mm.calls.clear()
    reply = await fast.slash(fast.people.alice, channel, "check 1.1")
    assert reply.text == ""
    fresh = await fast.fresh(incident)
    assert fresh.stages[0].steps[0].done and fresh.stages[0].steps[0].state_changed_by == fast.people.alice.id
    assert fast.mm.methods()[-2:] == ["create_post", "patch_post"]  # the timeline line, then the card
    assert fast.mm.count("patch_post") == 1 and fast.mm.count("get_incident") == 0
    assert "checked" in fast.mm.posts_in(channel.id)[-1].message.lower()


async def test_uncheck_reopens_the_step(fast):
    incident = await fast.start()
    channel = fast.channel_of(incident)
    await fast.slash(fast.people.alice, channel, "check 1.1")
    reply = await fast.slash(fast.people.alice, channel, "uncheck 1.1")
    assert reply.text == ""
    assert not (await fast.fresh(incident)).stages[0].steps[0].done


async def test_checking_twice_changes_nothing_the_second_time(fast):
    incident = await fast.start()
    channel = fast.channel_of(incident)
    await fast.slash(fast.people.alice, channel, "check 1.1")
    fast.mm.calls.clear()
    reply = await fast.slash(fast.people.alice, channel, "check 1.1")
    assert "already" in reply.text.lower()
    assert fast.mm.count("patch_post") == 0 and fast.mm.count("create_post") == 0


async def test_the_card_check_button_checks_for_a_channel_member(fast):
    incident = await fast.start()
    reply = await fast.click(fast.people.alice, fast.card_of(incident), "Check")
    assert reply.ephemeral_text == ""
    assert (await fast.fresh(incident)).stages[0].steps[0].done
    assert "Uncheck" in [b["name"] for b in fast.buttons(fast.card_of(incident))]


async def test_a_click_from_someone_outside_the_channel_is_refused_and_changes_nothing(fast):
    incident = await fast.start()
    fast.mm.calls.clear()
    reply = await fast.click(fast.people.bob, fast.card_of(incident), "Check")
    assert reply.ephemeral_text.startswith("Only members of the incident channel")
    assert not (await fast.fresh(incident)).stages[0].steps[0].done
    assert fast.mm.count("patch_post") == 0 and fast.mm.count("create_post") == 0


async def test_assign_names_the_assignee_on_the_step(fast):
    incident = await fast.start()
    channel = fast.channel_of(incident)
    fast.mm.join(channel.id, fast.people.bob.id)
    reply = await fast.slash(fast.people.alice, channel, "assign 1.2 @bob")
    assert reply.text == ""
    assert (await fast.fresh(incident)).stages[0].steps[1].assignee_id == fast.people.bob.id


async def test_assign_to_someone_from_another_team_is_answered_like_a_missing_user(fast):
    incident = await fast.start()
    reply = await fast.slash(fast.people.alice, fast.channel_of(incident), "assign 1.2 @dave")
    missing = await fast.slash(fast.people.alice, fast.channel_of(incident), "assign 1.2 @nobody")
    assert reply.text == missing.text.replace("@nobody", "@dave")
    assert (await fast.fresh(incident)).stages[0].steps[1].assignee_id is None


async def test_stage_next_moves_on_and_the_last_stage_says_so(fast):
    incident = await fast.start()
    channel = fast.channel_of(incident)
    assert (await fast.slash(fast.people.alice, channel, "stage next")).text == ""
    assert (await fast.fresh(incident)).active_stage == 1
    last = await fast.slash(fast.people.alice, channel, "stage next")
    assert "already the last stage" in last.text
    assert (await fast.fresh(incident)).active_stage == 1


async def test_the_next_stage_button_moves_on(fast):
    incident = await fast.start()
    await fast.click(fast.people.alice, fast.card_of(incident), "Next stage ▶")
    assert (await fast.fresh(incident)).active_stage == 1


async def test_commander_change_to_a_team_member_adds_nothing_else(fast):
    incident = await fast.start()
    channel = fast.channel_of(incident)
    fast.mm.join(channel.id, fast.people.bob.id)
    reply = await fast.slash(fast.people.alice, channel, "commander @bob")
    assert reply.text == ""
    assert (await fast.fresh(incident)).commander_id == fast.people.bob.id
    again = await fast.slash(fast.people.alice, channel, "commander @bob")
    assert again.text == "@bob is already the commander."


async def test_end_asks_first_then_ends_and_restart_reopens(fast):
    incident = await fast.start()
    channel = fast.channel_of(incident)
    assert (await fast.slash(fast.people.alice, channel, "end")).text == ""
    confirm = fast.mm.dialogs[-1]
    assert confirm.dialog["callback_id"] == "end"
    assert (await fast.fresh(incident)).status is IncidentStatus.ONGOING  # nothing yet
    assert (await fast.submit(fast.people.alice, confirm, {}, channel=channel)).closes
    assert (await fast.fresh(incident)).status is IncidentStatus.ENDED
    await fast.slash(fast.people.alice, channel, "restart")
    assert (await fast.submit(fast.people.alice, fast.mm.dialogs[-1], {}, channel=channel)).closes
    assert (await fast.fresh(incident)).status is IncidentStatus.ONGOING


async def test_ending_from_outside_the_channel_is_refused_in_the_dialog(fast):
    incident = await fast.start()
    channel = fast.channel_of(incident)
    await fast.slash(fast.people.alice, channel, "end")
    confirm = fast.mm.dialogs[-1]
    fast.mm.leave(channel.id, fast.people.alice.id)  # left before submitting
    reply = await fast.submit(fast.people.alice, confirm, {}, channel=channel)
    assert reply.error.startswith("Only members of the incident channel")
    assert (await fast.fresh(incident)).status is IncidentStatus.ONGOING


async def test_a_card_past_the_edit_time_limit_is_posted_again(fast):
    incident = await fast.start()
    old_card = incident.card_post_id
    fast.mm.edit_time_limit_s = 60
    fast.mm.tick(61_000)
    reply = await fast.slash(fast.people.alice, fast.channel_of(incident), "check 1.1")
    assert reply.text == ""
    fresh = await fast.fresh(incident)
    assert fresh.card_post_id != old_card
    assert fast.mm.posts[old_card].delete_at and fast.mm.posts[fresh.card_post_id].is_pinned


async def test_commands_outside_an_incident_channel_say_where_to_go(fast):
    await fast.start()
    reply = await fast.slash(fast.people.alice, fast.town, "check 1.1")
    assert "incident channel" in reply.text.lower() or "no incident" in reply.text.lower()

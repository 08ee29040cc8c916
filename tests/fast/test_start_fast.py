"""Starting an incident on the fake Mattermost: the calls made, in order and counted, and what they made."""

from __future__ import annotations

from domain.models import IncidentStatus

START_CALLS = ["get_team_member", "create_channel", "add_channel_member", "create_post", "create_post",
               "pin_post", "direct_channel_with", "create_post"]


async def test_the_slash_command_opens_the_start_dialog_with_the_playbooks_the_user_may_use(fast):
    playbook = await fast.playbook("Payments outage")
    await fast.playbook("Bob only", members=(fast.people.bob,))
    fast.mm.calls.clear()
    reply = await fast.slash(fast.people.alice, fast.town, "start Checkout errors")
    assert reply.text == ""
    assert fast.mm.methods() == ["get_user", "open_dialog"]
    dialog = fast.mm.dialogs[-1].dialog
    assert dialog["callback_id"] == "start" and fast.mm.dialogs[-1].url == "http://bot.test/mattermost/dialog"
    options = dialog["elements"][0]["options"]
    assert [(o["text"], o["value"]) for o in options] == [("Payments outage", playbook.id)]
    assert dialog["elements"][1]["default"] == "Checkout errors"


async def test_submitting_the_dialog_makes_eight_calls_in_order(fast):
    playbook = await fast.playbook()
    await fast.slash(fast.people.alice, fast.town, "start Checkout errors")
    fast.mm.calls.clear()
    reply = await fast.submit(fast.people.alice, fast.mm.dialogs[-1],
                              {"playbook": playbook.id, "name": "Checkout errors", "description": ""})
    assert reply.closes
    assert fast.mm.methods() == START_CALLS


async def test_start_makes_the_channel_adds_the_creator_posts_and_pins_the_card(fast):
    incident = await fast.start(name="Checkout errors")
    channel = fast.channel_of(incident)
    assert channel.name == "checkout-errors" and channel.type == "O" and channel.creator_id == fast.mm.user_id
    assert fast.mm.channel_members_of[channel.id] == {fast.mm.user_id, fast.people.alice.id}
    posts = fast.mm.posts_in(channel.id)
    assert posts[0].message == "This incident has been started by @alice."
    assert [p.id for p in fast.mm.pinned(channel.id)] == [incident.card_post_id]
    assert incident.commander_id == fast.people.alice.id and incident.status is IncidentStatus.ONGOING


async def test_the_creator_is_told_where_the_incident_is(fast):
    incident = await fast.start(name="Checkout errors")
    told = fast.mm.dms_to(fast.people.alice)
    assert len(told) == 1
    assert told[0].message == ("Your incident **Checkout errors** has started: ~checkout-errors. "
                               "You are its commander.")
    assert fast.channel_of(incident).name == "checkout-errors"


async def test_a_private_playbook_makes_a_private_channel(fast):
    playbook = await fast.playbook("Security", public=False)
    incident = await fast.start(name="Leaked key", playbook=playbook)
    assert fast.channel_of(incident).type == "P"
    assert incident.public is False


async def test_a_taken_channel_name_gets_a_suffix_instead_of_failing(fast):
    fast.mm.add_channel(fast.acme, "checkout-errors", [fast.people.bob], bot_in=False)
    incident = await fast.start(name="Checkout errors")
    name = fast.channel_of(incident).name
    assert name.startswith("checkout-errors-") and len(name) == len("checkout-errors-") + 4
    assert fast.mm.count("create_channel") == 2


async def test_the_card_names_the_stage_and_has_the_step_buttons(fast):
    incident = await fast.start()
    names = [b["name"] for b in fast.buttons(fast.card_of(incident))]
    assert names[:3] == ["Next stage ▶", "Change commander", "End incident"]
    assert names.count("Check") == 2  # the two steps of the first stage


async def test_starting_from_a_post_quotes_it_and_links_it(fast):
    alert = fast.mm.post_as(fast.people.bob, fast.town, "502s on /checkout since 12:01")
    playbook = await fast.playbook()
    reply = await fast.slash(fast.people.alice, fast.town, f"start --post {alert.id} Checkout errors")
    assert reply.text == ""
    outcome = await fast.submit(fast.people.alice, fast.mm.dialogs[-1],
                                {"playbook": playbook.id, "name": "Checkout errors", "description": ""})
    assert outcome.closes
    incident = (await fast.store.list_incidents(fast.acme.id, is_admin=True)).items[0]
    opening = fast.mm.posts_in(incident.channel_id)[0]
    assert f"/_redirect/pl/{alert.id}" in opening.message and "> 502s on /checkout since 12:01" in opening.message
    assert incident.source_post_id == alert.id


async def test_a_post_the_starter_cannot_read_is_not_quoted(fast):
    secret = fast.mm.add_channel(fast.acme, "secret", [fast.people.bob], private=True)
    hidden = fast.mm.post_as(fast.people.bob, secret, "the private words")
    playbook = await fast.playbook()
    await fast.slash(fast.people.alice, fast.town, f"start --post {hidden.id} Checkout errors")
    await fast.submit(fast.people.alice, fast.mm.dialogs[-1],
                      {"playbook": playbook.id, "name": "Checkout errors", "description": ""})
    incident = (await fast.store.list_incidents(fast.acme.id, is_admin=True)).items[0]
    assert incident.source_post_id is None
    assert all("private words" not in p.message for p in fast.mm.posts_in(incident.channel_id))
    assert fast.mm.dms_to(fast.people.alice)[-1].message.endswith("because you cannot read it.")


async def test_an_invalid_name_keeps_the_dialog_open_at_its_field(fast):
    playbook = await fast.playbook()
    await fast.slash(fast.people.alice, fast.town, "start")
    reply = await fast.submit(fast.people.alice, fast.mm.dialogs[-1],
                              {"playbook": playbook.id, "name": "   ", "description": ""})
    assert set(reply.errors) == {"name"} and not reply.closes
    assert fast.mm.count("create_channel") == 0


async def test_without_a_playbook_the_user_is_told_how_to_make_one(fast):
    reply = await fast.slash(fast.people.alice, fast.town, "start Checkout errors")
    assert "playbook" in reply.text.lower()
    assert fast.mm.dialogs == []


async def test_in_a_direct_message_start_offers_a_button_per_shared_team(fast):
    await fast.playbook()
    answers = await fast.direct_message(fast.people.alice, "start")
    assert len(answers) == 1
    assert [b["name"] for b in fast.buttons(answers[0])] == ["Start incident in Acme"]
    clicked = await fast.click(fast.people.alice, answers[0], "Start incident in Acme")
    assert clicked.ephemeral_text == ""
    assert fast.mm.dialogs[-1].dialog["callback_id"] == "start"

"""Following incidents on the fake Mattermost (issue 17): who may follow, idempotence, the limit,
the card's Follow button, and that following gives no right to act."""

from __future__ import annotations

from domain import limits
from domain.models import EventKind
from plugins.follow import FOLLOWING


async def _kinds(fast, incident) -> list[str]:
    return [e.kind for e in await fast.store.timeline(incident.id)]


async def test_a_team_member_outside_the_channel_follows_a_public_incident_by_its_channel(fast):
    incident = await fast.start()
    channel = fast.channel_of(incident)
    reply = await fast.slash(fast.people.carol, fast.town, f"follow ~{channel.name}")
    assert reply.text.startswith("You follow **Checkout errors**") and FOLLOWING in reply.text
    assert (await fast.fresh(incident)).follower_ids == (fast.people.carol.id,)
    assert EventKind.FOLLOWED in await _kinds(fast, incident)
    assert fast.people.carol.id not in fast.mm.channel_members_of[channel.id]  # following is not joining


async def test_following_twice_changes_nothing_and_records_one_event(fast):
    incident = await fast.start()
    await fast.slash(fast.people.carol, fast.town, "follow Checkout errors")
    again = await fast.slash(fast.people.carol, fast.town, "follow Checkout errors")
    assert again.text.startswith("You already follow")
    assert (await fast.fresh(incident)).follower_ids == (fast.people.carol.id,)
    assert (await _kinds(fast, incident)).count(EventKind.FOLLOWED) == 1


async def test_unfollow_removes_the_follower_once(fast):
    incident = await fast.start()
    await fast.slash(fast.people.carol, fast.town, "follow Checkout errors")
    reply = await fast.slash(fast.people.carol, fast.town, "unfollow Checkout errors")
    assert reply.text == "You no longer follow **Checkout errors**."
    assert (await fast.fresh(incident)).follower_ids == ()
    again = await fast.slash(fast.people.carol, fast.town, "unfollow Checkout errors")
    assert "do not follow" in again.text
    assert (await _kinds(fast, incident)).count(EventKind.UNFOLLOWED) == 1


async def test_in_the_incident_channel_follow_needs_no_reference(fast):
    incident = await fast.start()
    reply = await fast.slash(fast.people.alice, fast.channel_of(incident), "follow")
    assert reply.text.startswith("You follow")
    assert (await fast.fresh(incident)).follower_ids == (fast.people.alice.id,)


async def test_a_private_incident_cannot_be_followed_from_outside_and_is_not_revealed(fast):
    incident = await fast.start(playbook=await fast.playbook("Secret", public=False))
    reply = await fast.slash(fast.people.carol, fast.town, "follow Checkout errors")
    assert "not found" in reply.text.lower() or "no incident" in reply.text.lower()
    assert "Checkout errors" not in reply.text.replace('"Checkout errors"', "")
    assert (await fast.fresh(incident)).follower_ids == ()


async def test_someone_of_another_team_cannot_follow(fast):
    incident = await fast.start()
    lobby = next(c for c in fast.mm.channels.values() if c.name == "lobby")
    reply = await fast.slash(fast.people.dave, lobby, f"follow ~{fast.channel_of(incident).name}", team=fast.other)
    assert not reply.text.startswith("You follow")
    assert (await fast.fresh(incident)).follower_ids == ()


async def test_the_card_follow_button_answers_only_whoever_clicked(fast):
    incident = await fast.start()
    card = fast.card_of(await fast.fresh(incident))
    before = len(fast.mm.posts_in(incident.channel_id))
    reply = await fast.click(fast.people.carol, card, "Follow")
    assert reply.ephemeral_text.startswith("You follow **Checkout errors**") and reply.update is None
    assert len(fast.mm.posts_in(incident.channel_id)) == before  # nothing posted for everyone
    assert (await fast.fresh(incident)).follower_ids == (fast.people.carol.id,)
    again = await fast.click(fast.people.carol, card, "Follow")
    assert again.ephemeral_text.startswith("You already follow")


async def test_an_ended_incident_can_still_be_followed_from_its_card(fast):
    incident = await fast.start()
    channel = fast.channel_of(incident)
    await fast.slash(fast.people.alice, channel, "end")
    await fast.submit(fast.people.alice, fast.mm.dialogs[-1], {}, channel=channel)
    assert not (await fast.fresh(incident)).is_ongoing
    card = fast.card_of(await fast.fresh(incident))
    assert "Follow" in [b["name"] for b in fast.buttons(card)]
    reply = await fast.slash(fast.people.bob, fast.town, f"follow ~{channel.name}")
    assert reply.text.startswith("You follow")


async def test_a_follower_outside_the_channel_cannot_act_on_the_incident(fast):
    incident = await fast.start()
    channel = fast.channel_of(incident)
    await fast.slash(fast.people.carol, fast.town, f"follow ~{channel.name}")
    typed = await fast.slash(fast.people.carol, channel, "check 1.1")
    assert "Only members of the incident channel" in typed.text
    card = fast.card_of(await fast.fresh(incident))
    clicked = await fast.click(fast.people.carol, card, "Check")
    assert "Only members of the incident channel" in clicked.ephemeral_text
    fresh = await fast.fresh(incident)
    assert not fresh.stages[0].steps[0].done and fresh.follower_ids == (fast.people.carol.id,)


async def test_an_incident_takes_at_most_its_limit_of_followers(fast):
    incident = await fast.start()
    full = tuple(f"user{n:022d}" for n in range(limits.INCIDENT_FOLLOWERS_MAX))

    def fill(current):
        return current.model_copy(update={"follower_ids": full}), []
    await fast.store.mutate_incident(incident.id, fill)
    reply = await fast.slash(fast.people.carol, fast.town, "follow Checkout errors")
    assert f"already has {limits.INCIDENT_FOLLOWERS_MAX} followers" in reply.text
    assert fast.people.carol.id not in (await fast.fresh(incident)).follower_ids

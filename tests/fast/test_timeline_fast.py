"""The timeline on the fake Mattermost (issue 18): the WebSocket events that feed it as Mattermost
sends them (pins, two at once, the last pin taken off, edits, deletes, joins and leaves live and
replayed), who may read, hide and add, and hostile input."""

from __future__ import annotations

import asyncio
import json

from domain import limits
from domain.models import EventKind
from domain.timeline import entries
from gateway.models import Reaction


def _reaction_event(name: str, reaction: Reaction, channel_id: str, *, replayed: bool = False) -> dict:
    return {"event": name, "data": {"reaction": json.loads(reaction.model_dump_json())},
            "broadcast": {"omit_users": None, "user_id": "", "channel_id": channel_id, "team_id": ""},
            "seq": 3, "replayed": replayed}


async def _pin(fast, user, post, emoji: str = "pushpin") -> Reaction:
    reaction = Reaction(user_id=user.id, post_id=post.id, emoji_name=emoji, channel_id=post.channel_id,
                        create_at=fast.mm.tick())
    fast.mm.reactions.setdefault(post.id, []).append(reaction)
    await fast.registry.event(_reaction_event("reaction_added", reaction, post.channel_id))
    return reaction


async def _unpin(fast, user, post, emoji: str = "pushpin") -> None:
    fast.mm.reactions[post.id] = [r for r in fast.mm.reactions.get(post.id, [])
                                  if not (r.user_id == user.id and r.emoji_name == emoji)]
    # What the server broadcasts (app/reaction.go sendReactionEvent after DeleteReactionForPost).
    gone = Reaction(user_id=user.id, post_id=post.id, emoji_name=emoji)
    await fast.registry.event(_reaction_event("reaction_removed", gone, post.channel_id))


async def _post_event(fast, name: str, post, **data) -> None:
    await fast.registry.event({"event": name, "data": {"post": json.loads(post.model_dump_json()), **data},
                               "broadcast": {"channel_id": post.channel_id}, "seq": 4})


async def _kinds(fast, incident) -> list[EventKind]:
    return [e.kind for e in await fast.store.timeline(incident.id)]


async def _incident_with_bob(fast):
    incident = await fast.start()
    fast.mm.join(incident.channel_id, fast.people.bob.id)
    return incident, fast.channel_of(incident)


async def test_a_pin_adds_the_post_once_with_its_own_time_author_and_permalink(fast):
    incident, channel = await _incident_with_bob(fast)
    post = fast.mm.post_as(fast.people.bob, channel, "DB at 100% CPU")
    fast.mm.tick(60_000)
    await asyncio.gather(_pin(fast, fast.people.alice, post), _pin(fast, fast.people.bob, post))  # two at once
    added = [e for e in await fast.store.timeline(incident.id) if e.kind is EventKind.POST_ADDED]
    assert len(added) == 1
    assert added[0].at == post.create_at and added[0].details["author_id"] == fast.people.bob.id
    assert added[0].details["permalink"] == f"{fast.mm.base_url}/acme/pl/{post.id}"
    reply = await fast.slash(fast.people.alice, channel, "timeline")
    assert "by @bob: “DB at 100% CPU”" in reply.text


async def test_other_emoji_other_channels_and_the_bots_own_reactions_add_nothing(fast):
    incident, channel = await _incident_with_bob(fast)
    post = fast.mm.post_as(fast.people.bob, channel, "hello")
    await _pin(fast, fast.people.bob, post, emoji="thumbsup")
    bot = fast.mm.users[fast.mm.user_id]
    await _pin(fast, bot, post)
    elsewhere = fast.mm.post_as(fast.people.bob, fast.town, "not an incident channel")
    await _pin(fast, fast.people.bob, elsewhere)
    assert EventKind.POST_ADDED not in await _kinds(fast, incident)


async def test_the_last_pin_taken_off_removes_the_entry_and_a_command_added_post_stays(fast):
    incident, channel = await _incident_with_bob(fast)
    post = fast.mm.post_as(fast.people.bob, channel, "first clue")
    await _pin(fast, fast.people.alice, post)
    await _pin(fast, fast.people.bob, post)
    await _unpin(fast, fast.people.alice, post)
    shown = [e.event.kind for e in entries(await fast.store.timeline(incident.id))]
    assert EventKind.POST_ADDED in shown
    await _unpin(fast, fast.people.bob, post)
    assert EventKind.POST_ADDED not in [e.event.kind for e in entries(await fast.store.timeline(incident.id))]

    linked = fast.mm.post_as(fast.people.bob, channel, "added by command")
    reply = await fast.slash(fast.people.alice, channel, f"timeline add {linked.id} why it matters")
    assert reply.text.startswith("Added the post to the timeline"), reply.text
    await _pin(fast, fast.people.bob, linked)
    await _unpin(fast, fast.people.bob, linked)
    text = (await fast.slash(fast.people.alice, channel, "timeline")).text
    assert "added by command" in text and "why it matters" in text


async def test_edits_are_followed_but_not_the_bots_own_and_a_delete_marks_the_entry(fast):
    incident, channel = await _incident_with_bob(fast)
    post = fast.mm.post_as(fast.people.bob, channel, "before")
    await _pin(fast, fast.people.bob, post)
    edited = post.model_copy(update={"message": "after", "edit_at": fast.mm.tick()})
    await _post_event(fast, "post_edited", edited)
    await _post_event(fast, "post_edited", edited)  # the same edit twice: one event
    assert (await _kinds(fast, incident)).count(EventKind.POST_EDITED) == 1
    assert "“after”" in (await fast.slash(fast.people.alice, channel, "timeline")).text
    card = fast.card_of(incident)
    await _post_event(fast, "post_edited", card.model_copy(update={"message": "redrawn"}))
    deleted = edited.model_copy(update={"delete_at": fast.mm.tick()})
    await _post_event(fast, "post_deleted", deleted, delete_by=fast.people.bob.id)
    text = (await fast.slash(fast.people.alice, channel, "timeline")).text
    assert "after" not in text and "(since deleted)" in text
    assert (await _kinds(fast, incident)).count(EventKind.POST_DELETED) == 1


async def test_joins_and_leaves_are_recorded_once_live_and_replayed(fast):
    fast.ctx.clock = lambda: fast.mm.now_ms  # the bot's clock and the server's agree
    incident, channel = await _incident_with_bob(fast)
    carol = fast.people.carol
    joined_at = fast.mm.tick(1000)
    live = {"event": "user_added", "data": {"user_id": carol.id, "team_id": fast.acme.id},
            "broadcast": {"channel_id": channel.id}, "seq": 5}
    await fast.registry.event(live)
    # The catch-up replays the same join from its system post, stamped a little earlier.
    replayed = {**live, "replayed": True, "at": joined_at - 5}
    await fast.registry.event(replayed)
    left = {"event": "user_removed", "data": {"user_id": carol.id, "remover_id": fast.people.alice.id},
            "broadcast": {"channel_id": channel.id}, "seq": 6, "replayed": True, "at": fast.mm.tick(1000)}
    await fast.registry.event(left)
    await fast.registry.event(left)
    # The copy sent to the removed user names the channel in its data, not the user: nothing more.
    await fast.registry.event({"event": "user_removed", "data": {"channel_id": channel.id, "remover_id": "x"},
                               "broadcast": {"user_id": carol.id}, "seq": 7})
    kinds = [e.kind for e in await fast.store.events_about(incident.id, carol.id)]
    assert kinds == [EventKind.MEMBER_JOINED, EventKind.MEMBER_LEFT]
    text = (await fast.slash(fast.people.alice, channel, "timeline")).text
    assert "@carol joined the channel" in text and "@alice removed @carol from the channel" in text


async def test_who_may_read_the_timeline_public_private_other_team_and_dm(fast):
    public = await fast.start()
    carol, dave = fast.people.carol, fast.people.dave
    channel = fast.channel_of(public)
    reply = await fast.slash(carol, fast.town, f"timeline ~{channel.name}")
    assert "Timeline · Checkout errors" in reply.text  # public: the team may read it
    dave_reply = await fast.slash(dave, fast.mm.channel_by_name_in(fast.other, "lobby"), f"timeline ~{channel.name}",
                                  team=fast.other)
    assert "Checkout errors" not in dave_reply.text

    private = await fast.start(name="Quiet breach", playbook=await fast.playbook("Secret", public=False))
    hidden = await fast.slash(carol, fast.town, f"timeline ~{fast.channel_of(private).name}")
    assert "Quiet breach" not in hidden.text and "No incident" in hidden.text
    admin = await fast.slash(fast.people.admin, fast.town, f"timeline ~{fast.channel_of(private).name}")
    assert "Timeline · Quiet breach" in admin.text

    answers = await fast.direct_message(fast.people.alice, "timeline Quiet breach")
    assert any("Timeline · Quiet breach" in p.message for p in answers)


async def test_hide_is_for_the_commander_only_and_hostile_input_is_refused_clearly(fast):
    incident, channel = await _incident_with_bob(fast)
    await fast.slash(fast.people.alice, channel, "check 1.1")
    refused = await fast.slash(fast.people.bob, channel, "timeline hide 2")
    assert "Only the commander can hide" in refused.text
    assert EventKind.EVENT_HIDDEN not in await _kinds(fast, incident)
    for words, expected in [
        ("timeline hide 99999999999999999999999", "There is no event #"),
        ("timeline hide two", "is not an event number"),
        ("timeline hide", "Something is missing"),
        ("timeline hide 1 2", "Too many words"),
        ("timeline 0", "Pages count from 1"),
        ("timeline --everything", "is not a timeline option"),
        ("timeline add", "Something is missing"),
        ("timeline add not-a-link", "is not a post link or post id"),
        ("timeline add " + "q" * 26 + " " + "n" * (limits.TIMELINE_NOTE_MAX + 1), f"at most {limits.TIMELINE_NOTE_MAX}"),
    ]:
        reply = await fast.slash(fast.people.alice, channel, words)
        assert expected in reply.text, (words, reply.text)
    assert (await _kinds(fast, incident)).count(EventKind.EVENT_HIDDEN) == 0
    assert "hidden" in (await fast.slash(fast.people.alice, channel, "timeline hide 2")).text
    # Someone who left the channel cannot add to it any more.
    fast.mm.leave(channel.id, fast.people.bob.id)
    post = fast.mm.post_as(fast.people.alice, fast.town, "town news")
    gone = await fast.slash(fast.people.bob, channel, f"timeline add {post.id}")
    assert "Only members of the incident channel" in gone.text


async def test_a_huge_post_is_kept_short_and_its_markdown_cannot_break_out(fast):
    incident, channel = await _incident_with_bob(fast)
    post = fast.mm.post_as(fast.people.bob, channel, "@here **x** " + "y" * 5000 + "\n# heading")
    await _pin(fast, fast.people.bob, post)
    event = next(e for e in await fast.store.timeline(incident.id) if e.kind is EventKind.POST_ADDED)
    assert len(event.details["excerpt"]) == limits.TIMELINE_EXCERPT_MAX
    text = (await fast.slash(fast.people.alice, channel, "timeline")).text
    line = next(line for line in text.splitlines() if "added" in line and "by @bob" in line)
    assert "@here" not in line and "\n" not in line


async def test_a_member_who_left_a_private_incident_no_longer_reads_its_timeline(fast):
    private = await fast.start(name="Quiet breach", playbook=await fast.playbook("Secret", public=False))
    channel = fast.channel_of(private)
    fast.mm.join(channel.id, fast.people.bob.id)
    assert "Timeline · Quiet breach" in (await fast.slash(fast.people.bob, channel, "timeline")).text
    fast.mm.leave(channel.id, fast.people.bob.id)
    fast.app.directory.forget_channel(channel.id)  # what the user_removed event does to the kept membership
    reply = await fast.slash(fast.people.bob, fast.town, f"timeline ~{channel.name}")
    assert "Quiet breach" not in reply.text and "No incident" in reply.text


async def test_the_people_a_start_adds_are_on_the_timeline_once(fast):
    playbook = await fast.playbook("Invites")
    playbook = await fast.store.update_playbook(playbook.model_copy(update={"invited_user_ids": (fast.people.bob.id,)}))
    incident = await fast.start(playbook=playbook)
    channel = fast.channel_of(incident)
    # Mattermost's user_added for bob, arriving after the incident is stored, adds nothing.
    await fast.registry.event({"event": "user_added", "data": {"user_id": fast.people.bob.id, "team_id": fast.acme.id},
                               "broadcast": {"channel_id": channel.id}, "seq": 9})
    joined = [e.details["user_id"] for e in await fast.store.timeline(incident.id) if e.kind is EventKind.MEMBER_JOINED]
    assert joined == [fast.people.alice.id, fast.people.bob.id]
    text = (await fast.slash(fast.people.alice, channel, "timeline")).text
    assert "@alice joined the channel" in text and "@alice added @bob to the channel" in text

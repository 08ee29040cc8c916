"""Status updates on the fake Mattermost (docs/status-updates.md): the dialog, the post, the card
line, broadcast channels checked at send time, followers' direct messages, the final update on end."""

from __future__ import annotations

import pytest

from domain.durations import MINUTE_MS
from domain.models import EventKind, IncidentStatus
from services.updates import UPDATE_MARK


@pytest.fixture(autouse=True)
async def scheduler(fast):
    """The copies (broadcast channels, followers) are the scheduler's jobs: it runs in these tests."""
    await fast.app.scheduler.start()
    yield fast.app.scheduler
    await fast.app.scheduler.stop()


async def _copies_sent(fast):
    """Wait until the scheduler has sent the copies due (the author's answer does not wait for them)."""
    await fast.app.scheduler.settle()


async def _configure(fast, incident, *, broadcast=(), followers=(), interval_ms=None, template=""):
    def change(current):
        updates = current.updates.model_copy(update={"broadcast_channel_ids": tuple(c.id for c in broadcast),
                                                     "interval_ms": interval_ms, "template": template})
        return current.model_copy(update={"updates": updates, "follower_ids": tuple(u.id for u in followers)}), []
    updated, _ = await fast.store.mutate_incident(incident.id, change)
    return updated


async def _open_update(fast, user, incident):
    reply = await fast.slash(user, fast.channel_of(incident), "update")
    assert reply.text == "", reply.text
    return fast.mm.dialogs[-1]


def _updates_in(fast, channel_id):
    return [post for post in fast.mm.posts_in(channel_id) if UPDATE_MARK in post.props]


async def test_the_update_dialog_is_prefilled_from_the_template_with_the_default_first(fast):
    incident = await _configure(fast, await fast.start(), interval_ms=60 * MINUTE_MS, template="**Impact:**")
    dialog = await _open_update(fast, fast.people.alice, incident)
    elements = {e["name"]: e for e in dialog.dialog["elements"]}
    assert elements["text"]["default"] == "**Impact:**" and elements["text"]["type"] == "textarea"
    options = [o["text"] for o in elements["next_in"]["options"]]
    assert options == ["Playbook default (1 h)", "15 min", "30 min", "4 h", "No next update"]
    assert elements["next_in"]["default"] == "default"


async def test_posting_an_update_posts_it_records_it_and_shows_it_on_the_card(fast):
    incident = await fast.start()
    channel = fast.channel_of(incident)
    dialog = await _open_update(fast, fast.people.alice, incident)
    outcome = await fast.submit(fast.people.alice, dialog, {"text": "DB failover done", "next_in": "30m"},
                                channel=channel)
    assert outcome.closes, (outcome.errors, outcome.error)
    [post] = _updates_in(fast, channel.id)
    assert "Status update" in post.message and "@alice" in post.message and "DB failover done" in post.message
    assert "Next update due in 30 min" in post.message
    fresh = await fast.fresh(incident)
    assert fresh.last_update_by == fast.people.alice.id and fresh.last_update_post_id == post.id
    assert fresh.next_update_due_at == fresh.last_update_at + 30 * MINUTE_MS
    timeline = await fast.store.timeline(incident.id)
    assert [e.kind for e in timeline].count(EventKind.STATUS_UPDATE) == 1
    header = fast.card_of(incident).props["attachments"][0]["text"]
    assert "Last update" in header and "by @alice" in header and "next due" in header


async def test_an_empty_update_is_refused_at_its_field_and_records_nothing(fast):
    incident = await fast.start()
    dialog = await _open_update(fast, fast.people.alice, incident)
    outcome = await fast.submit(fast.people.alice, dialog, {"text": "   ", "next_in": "none"},
                                channel=fast.channel_of(incident))
    assert "text" in outcome.errors
    bad = await fast.submit(fast.people.alice, dialog, {"text": "ok", "next_in": "soon"},
                            channel=fast.channel_of(incident))
    assert "next_in" in bad.errors
    assert (await fast.fresh(incident)).last_update_at is None


async def test_a_follower_outside_the_channel_gets_the_update_but_cannot_post_one(fast):
    people = fast.people
    incident = await _configure(fast, await fast.start(), followers=(people.carol, people.alice))
    dialog = await _open_update(fast, people.alice, incident)
    alice_before = len(fast.mm.dms_to(people.alice))
    await fast.submit(people.alice, dialog, {"text": "Mitigated", "next_in": "none"}, channel=fast.channel_of(incident))
    await _copies_sent(fast)
    dms = fast.mm.dms_to(people.carol)
    assert len(dms) == 1 and "Mitigated" in dms[-1].message and "You follow" in dms[-1].message
    assert len(fast.mm.dms_to(people.alice)) == alice_before  # the author is not sent their own update
    assert (await fast.slash(people.carol, fast.town, 'update "Checkout errors"')).text == ""
    refused = await fast.submit(people.carol, fast.mm.dialogs[-1], {"text": "Hi", "next_in": "none"})
    assert "Only members of the incident channel" in (refused.error or "")
    assert len(_updates_in(fast, incident.channel_id)) == 1


async def test_a_follower_who_can_no_longer_see_a_private_incident_is_sent_nothing(fast):
    people = fast.people
    playbook = await fast.playbook(public=False)
    incident = await fast.start(playbook=playbook)
    incident = await _configure(fast, incident, followers=(people.bob,))  # bob never was in the channel
    dialog = await _open_update(fast, people.alice, incident)
    await fast.submit(people.alice, dialog, {"text": "Secret", "next_in": "none"}, channel=fast.channel_of(incident))
    await _copies_sent(fast)
    assert fast.mm.dms_to(people.bob) == []


async def test_broadcast_goes_where_the_author_may_post_and_names_the_refused_channels(fast):
    mm, people = fast.mm, fast.people
    ops = mm.add_channel(fast.acme, "ops", [people.alice])
    elsewhere = mm.add_channel(fast.acme, "not-mine", [people.bob])
    no_bot = mm.add_channel(fast.acme, "no-bot", [people.alice], bot_in=False)
    hidden = mm.add_channel(fast.acme, "hidden", [people.alice], private=True, bot_in=False)
    readonly = mm.add_channel(fast.acme, "announcements", [people.alice])
    mm.member_roles[(readonly.id, people.alice.id)] = "scheme_readonly"
    incident = await _configure(fast, await fast.start(), broadcast=(ops, elsewhere, no_bot, hidden, readonly))
    dialog = await _open_update(fast, people.alice, incident)
    outcome = await fast.submit(people.alice, dialog, {"text": "All good", "next_in": "none"},
                                channel=fast.channel_of(incident))
    await _copies_sent(fast)
    assert outcome.closes
    assert len(_updates_in(fast, ops.id)) == 1
    for refused in (elsewhere, no_bot, hidden, readonly):
        assert _updates_in(fast, refused.id) == []
    report = fast.mm.dms_to(people.alice)[-1]
    assert "~ops" in report.message.split("but not copied")[0]
    assert "~not-mine: you are not a member" in report.message
    assert "~no-bot: I am not a member" in report.message
    assert "~announcements: you cannot post" in report.message
    assert "hidden" not in report.message  # a private channel the bot cannot see is not named
    assert len(_updates_in(fast, incident.channel_id)) == 1  # still posted in the incident channel


async def test_hostile_update_text_fires_no_mention_and_fits_one_post(fast):
    incident = await fast.start()
    hostile = "@channel @all <!here> ~town-square " + "*`x`*[a](javascript:alert(1)) " * 900
    dialog = await _open_update(fast, fast.people.alice, incident)
    outcome = await fast.submit(fast.people.alice, dialog, {"text": hostile[:16000], "next_in": "none"},
                                channel=fast.channel_of(incident))
    assert outcome.closes, (outcome.errors, outcome.error)
    [post] = _updates_in(fast, incident.channel_id)
    assert len(post.message) <= 16383
    assert "@channel" not in post.message and "@all" not in post.message
    assert "](javascript" not in post.message and "<!here>" not in post.message


async def test_an_update_longer_than_the_limit_is_refused_at_its_field(fast):
    incident = await fast.start()
    dialog = await _open_update(fast, fast.people.alice, incident)
    outcome = await fast.submit(fast.people.alice, dialog, {"text": "x" * 16001, "next_in": "none"},
                                channel=fast.channel_of(incident))
    assert "text" in outcome.errors and _updates_in(fast, incident.channel_id) == []


async def test_ending_with_a_final_update_posts_it_before_the_end_and_tells_followers_once(fast):
    people = fast.people
    incident = await _configure(fast, await fast.start(), followers=(people.carol,), interval_ms=15 * MINUTE_MS)
    channel = fast.channel_of(incident)
    assert (await fast.slash(people.alice, channel, "end")).text == ""
    end_dialog = fast.mm.dialogs[-1]
    assert [e["name"] for e in end_dialog.dialog["elements"]] == ["final_update"]
    outcome = await fast.submit(people.alice, end_dialog, {"final_update": "Root cause: bad deploy"}, channel=channel)
    await _copies_sent(fast)
    assert outcome.closes, (outcome.errors, outcome.error)
    fresh = await fast.fresh(incident)
    assert fresh.status is IncidentStatus.ENDED and fresh.next_update_due_at is None
    messages = [p.message for p in fast.mm.posts_in(channel.id)]
    final_at = next(i for i, m in enumerate(messages) if "Final update" in m)
    ended_at = next(i for i, m in enumerate(messages) if "has been ended by" in m)
    assert final_at < ended_at
    [dm] = fast.mm.dms_to(people.carol)
    assert "ended by @alice" in dm.message and "Root cause: bad deploy" in dm.message
    kinds = [e.kind for e in await fast.store.timeline(incident.id)]
    assert kinds[-2:] == [EventKind.STATUS_UPDATE, EventKind.ENDED]


async def test_ending_without_a_final_update_and_restarting_tell_followers(fast):
    people = fast.people
    incident = await _configure(fast, await fast.start(), followers=(people.carol,))
    channel = fast.channel_of(incident)
    await fast.slash(people.alice, channel, "end")
    await fast.submit(people.alice, fast.mm.dialogs[-1], {}, channel=channel)
    assert not any("Final update" in p.message for p in fast.mm.posts_in(channel.id))
    await fast.slash(people.alice, channel, "restart")
    await fast.submit(people.alice, fast.mm.dialogs[-1], {}, channel=channel)
    await _copies_sent(fast)
    dms = [p.message for p in fast.mm.dms_to(people.carol)]
    assert len(dms) == 2 and "ended by @alice" in dms[0] and "restarted by @alice" in dms[1]


async def test_an_ended_incident_takes_no_update(fast):
    incident = await fast.start()
    channel = fast.channel_of(incident)
    await fast.slash(fast.people.alice, channel, "end")
    await fast.submit(fast.people.alice, fast.mm.dialogs[-1], {}, channel=channel)
    reply = await fast.slash(fast.people.alice, channel, "update")
    assert "has ended" in reply.text


async def test_the_card_update_button_opens_the_dialog(fast):
    incident = await fast.start()
    before = len(fast.mm.dialogs)
    reply = await fast.click(fast.people.alice, fast.card_of(incident), "Post update")
    assert reply.ephemeral_text == "" and len(fast.mm.dialogs) == before + 1
    assert fast.mm.dialogs[-1].dialog["callback_id"] == "update"


async def test_rest_calls_of_one_update_grow_with_broadcast_channels_and_followers(fast):
    people = fast.people
    ops = fast.mm.add_channel(fast.acme, "ops", [people.alice])
    incident = await fast.start()
    dialog = await _open_update(fast, people.alice, incident)
    fast.mm.calls.clear()
    await fast.submit(people.alice, dialog, {"text": "one", "next_in": "none"}, channel=fast.channel_of(incident))
    bare = len(fast.mm.calls)
    incident = await _configure(fast, incident, broadcast=(ops,), followers=(people.carol,))
    dialog = await _open_update(fast, people.alice, incident)
    fast.mm.calls.clear()
    await fast.submit(people.alice, dialog, {"text": "two", "next_in": "none"}, channel=fast.channel_of(incident))
    answered = fast.mm.methods()
    assert len(answered) == bare, answered  # the author's answer does not wait for the copies
    await _copies_sent(fast)
    # The copies, sent by the update_fanout job: the incident channel's name (the header), then
    # one broadcast channel: get_channel, the bot's and the author's get_channel_member, roles_grant
    # (the author's roles, first time), create_post; one follower outside the channel: get_user,
    # get_channel_member (theirs, the bot's), get_team_member, direct_channel_with, create_post.
    assert fast.mm.methods()[bare:] == [
        "get_channel", "get_channel", "get_channel_member", "get_channel_member", "roles_grant", "create_post",
        "get_user", "get_channel_member", "get_channel_member", "get_team_member", "direct_channel_with",
        "create_post"]
    assert fast.mm.count("create_post") == 3  # the incident channel, ~ops, carol's direct message
    dialog = await _open_update(fast, people.alice, incident)
    fast.mm.calls.clear()
    await fast.submit(people.alice, dialog, {"text": "three", "next_in": "none"}, channel=fast.channel_of(incident))
    await _copies_sent(fast)
    assert fast.mm.count("roles_grant") == 0  # the same roles, asked less than 30 s ago: the answer is kept

"""The full timeline (issue 18), end to end as people see it: ``/incident timeline`` pages every event
with its UTC time and "+h:mm since start"; a :pushpin: on a post of the incident channel adds it (the
post's own time, author, excerpt, permalink), taking the last one off removes it, edits and deletes
are followed — live and across a WebSocket outage (catch-up); ``timeline add`` adds a post the user
can read from elsewhere and refuses one they cannot; the commander hides an event, others cannot;
joins and leaves are recorded once; a private incident's timeline stays hidden from non-members."""

from __future__ import annotations

import asyncio
import re

import pytest

from bot import CommandCenter
from domain import limits
from domain.models import EventKind
from domain.timeline import entries
from gateway.events import ConnectionPolicy
from tests.e2e.conftest import bot_settings, make_playbook
from tests.e2e.test_incidents import start_incident
from tests.e2e.test_live_card import synchronise

FAST = ConnectionPolicy(connect_timeout_s=2.0, ping_after_s=0.2, dead_after_s=0.6, backoff_base_s=0.05,
                        backoff_cap_s=0.3)
LINE = re.compile(r"^- `#(\d+)` (\d{4}-\d\d-\d\d \d\d:\d\d UTC) · ([+-]\d+:\d\d) · (\S+) (.*)$")


@pytest.fixture
async def tbot(sandbox, tmp_path):
    """A started bot whose WebSocket notices an outage within a second, on the sandbox's clock."""
    app = CommandCenter(bot_settings(sandbox, tmp_path / "data"))
    app.websocket_policy = FAST
    await app.start()
    try:
        await app.wait_connected()
        synchronise(sandbox, app)
        yield app
    finally:
        await app.stop()


async def settle(sandbox, app: CommandCenter) -> None:
    """Everything the bot was sent so far is handled: a direct message it answers comes after every
    earlier event on its one connection, and then no handler is still running."""
    carol = sandbox.user("carol")
    dm = await carol.dm_channel("incident")
    bot_id = sandbox.user_id("incident")
    before = sum(1 for p in sandbox.posts(dm) if p["user_id"] == bot_id)
    await carol.post(dm, "help")
    await sandbox.wait_for(lambda: sum(1 for p in sandbox.posts(dm) if p["user_id"] == bot_id) > before)
    await app.events.settled()


async def shown(app: CommandCenter, incident_id: str) -> list:
    return entries(await app.store.timeline(incident_id))


def lines(text: str) -> list[re.Match]:
    return [m for m in (LINE.match(line) for line in text.splitlines()) if m]


async def timeline(sandbox, user: str, where: str, words: str = "") -> str:
    result = await sandbox.user(user).command(where, f"/incident timeline {words}".rstrip())
    assert result.status == 200, result.error
    return result.response["text"]


async def outage(sandbox, app: CommandCenter) -> None:
    sandbox.block_websockets("incident")
    assert sandbox.drop_websockets("incident") == 1
    await asyncio.wait_for(app.events.disconnected.wait(), 5)


async def recover(sandbox, app: CommandCenter) -> None:
    sandbox.block_websockets("incident", False)
    await app.wait_connected(5)
    await asyncio.wait_for(app.events.caught_up.wait(), 5)
    await app.events.settled()


async def test_pin_edit_delete_unpin_live_as_the_timeline_shows_them(sandbox, tbot):
    await make_playbook(tbot, sandbox, members=("alice", "bob"))
    incident, channel = await start_incident(sandbox, tbot)
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    await alice.add_member(channel["id"], "bob")
    await alice.command(channel["id"], "/incident check 1.1")
    post = await bob.post(channel["id"], "Error rate is 40% since 14:02 @channel")
    await alice.react(post["id"], "pushpin")
    await bob.react(post["id"], "pushpin")  # a second pin adds nothing
    await settle(sandbox, tbot)

    added = [e for e in await shown(tbot, incident.id) if e.event.kind is EventKind.POST_ADDED]
    assert len(added) == 1
    event = added[0].event
    assert event.at == post["create_at"] and event.actor_id == sandbox.user_id("alice")
    assert event.details["author_id"] == sandbox.user_id("bob")
    assert event.details["permalink"] == f"{sandbox.url}/acme/pl/{post['id']}"

    text = await timeline(sandbox, "alice", channel["id"])
    rows = lines(text)
    said = [(m.group(4), m.group(5)) for m in rows]
    assert said[0] == ("@alice", "started the incident from the playbook “Incident Response”")
    assert ("@bob", "joined the channel") in said  # live user_added: who added him is not in the event
    assert ("@alice", "checked step 1.1 “Acknowledge the alert”") in said
    pin = next(m for m in rows if "added [a post]" in m.group(5))
    assert f"({sandbox.url}/acme/pl/{post['id']})" in pin.group(5) and "by @bob" in pin.group(5)
    assert "@\u2060channel" in pin.group(5) and "@channel" not in pin.group(5)  # no mention fires
    assert pin.group(3).startswith("+0:")

    # An edit changes the text; taking one pin off keeps it; the last one removes it.
    await bob._call("PUT", f"/api/v4/posts/{post['id']}/patch", json_body={"message": "Error rate back to 1%"})
    await settle(sandbox, tbot)
    assert "Error rate back to 1%" in await timeline(sandbox, "alice", channel["id"])
    await alice.unreact(post["id"], "pushpin")
    await settle(sandbox, tbot)
    assert "Error rate back to 1%" in await timeline(sandbox, "alice", channel["id"])
    await bob.unreact(post["id"], "pushpin")
    await settle(sandbox, tbot)
    assert "Error rate" not in await timeline(sandbox, "alice", channel["id"])

    # Pinned again, then deleted: the entry stays, marked, without the text.
    await bob.react(post["id"], "pushpin")
    await settle(sandbox, tbot)
    assert "Error rate back to 1%" in await timeline(sandbox, "alice", channel["id"])
    await bob._call("DELETE", f"/api/v4/posts/{post['id']}")
    await settle(sandbox, tbot)
    text = await timeline(sandbox, "alice", channel["id"])
    assert "Error rate" not in text and "(since deleted)" in text


async def test_reactions_edits_deletes_and_joins_across_an_outage_are_caught_up_once(sandbox, tbot):
    await make_playbook(tbot, sandbox, members=("alice", "bob"))
    incident, channel = await start_incident(sandbox, tbot)
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    kept = await alice.post(channel["id"], "first finding")
    edited = await alice.post(channel["id"], "second finding")
    gone = await alice.post(channel["id"], "third finding")
    unpinned = await alice.post(channel["id"], "fourth finding")
    for post in (kept, edited, gone, unpinned):
        await alice.react(post["id"], "pushpin")
    await alice.add_member(channel["id"], "bob")  # seen live
    await settle(sandbox, tbot)
    assert len([e for e in await shown(tbot, incident.id) if e.event.kind is EventKind.POST_ADDED]) == 4

    await outage(sandbox, tbot)
    during = await bob.post(channel["id"], "found it: the deploy at 14:00")
    await bob.react(during["id"], "pushpin")
    await alice._call("PUT", f"/api/v4/posts/{edited['id']}/patch", json_body={"message": "second finding, corrected"})
    await alice._call("DELETE", f"/api/v4/posts/{gone['id']}")
    await alice.unreact(unpinned["id"], "pushpin")
    await bob._call("DELETE", f"/api/v4/channels/{channel['id']}/members/{bob.id}")  # bob leaves
    await alice.add_member(channel["id"], "dave")
    await recover(sandbox, tbot)

    text = await timeline(sandbox, "alice", channel["id"])
    assert "first finding" in text and "second finding, corrected" in text and "found it" in text
    assert "third finding" not in text and "(since deleted)" in text and "fourth finding" not in text
    assert text.count("@bob left the channel") + text.count("left the channel") >= 1
    assert "added @dave to the channel" in text

    # Another outage replays the same window (the overlap): nothing is recorded twice.
    before = await tbot.store.timeline(incident.id)
    sandbox.drop_websockets("incident")
    await asyncio.wait_for(tbot.events.disconnected.wait(), 5)
    await recover(sandbox, tbot)
    await settle(sandbox, tbot)
    assert [e.id for e in await tbot.store.timeline(incident.id)] == [e.id for e in before]
    joins = [e for e in before if e.kind is EventKind.MEMBER_JOINED and e.details["user_id"] == bob.id]
    leaves = [e for e in before if e.kind is EventKind.MEMBER_LEFT and e.details["user_id"] == bob.id]
    assert len(joins) == 1 and len(leaves) == 1


async def test_timeline_add_takes_posts_the_user_can_read_and_refuses_others(sandbox, tbot):
    await make_playbook(tbot, sandbox, members=("alice", "bob"))
    _incident, channel = await start_incident(sandbox, tbot)
    alice = sandbox.user("alice")
    await alice.add_member(channel["id"], "bob")
    outside = await sandbox.user("dave").post("town-square", "customers report 502s on checkout")
    secret = await sandbox.user("carol").post("leadership", "board meeting moved")  # alice and carol only

    result = await alice.command(channel["id"], f"/incident timeline add {sandbox.url}/acme/pl/{outside['id']} "
                                                "the first report")
    assert "Added the post to the timeline as `#" in result.response["text"], result.response
    again = await alice.command(channel["id"], f"/incident timeline add {outside['id']}")
    assert "already on this incident's timeline" in again.response["text"]
    text = await timeline(sandbox, "bob", channel["id"])
    assert "customers report 502s" in text and "the first report" in text and "by @dave" in text

    # bob is not in ~leadership, and neither is the bot: one answer for that, for a post that does not
    # exist, and for alice (who may read it, but the bot may not), so nothing about the channel is learned.
    refused = await sandbox.user("bob").command(channel["id"], f"/incident timeline add {secret['id']}")
    missing = await sandbox.user("bob").command(channel["id"], "/incident timeline add " + "x" * 26)
    bot_cannot = await alice.command(channel["id"], f"/incident timeline add {secret['id']}")
    assert "I cannot add that post" in refused.response["text"] and "add @incident to that channel" in (
        refused.response["text"])
    assert refused.response["text"] == missing.response["text"] == bot_cannot.response["text"]
    assert "board meeting" not in await timeline(sandbox, "alice", channel["id"])
    # Once the bot is in ~leadership, alice may add it; bob still may not (he cannot read it).
    await alice.add_member("leadership", "incident")
    assert "Added the post" in (await alice.command(channel["id"], f"/incident timeline add {secret['id']}")
                                ).response["text"]
    still = await sandbox.user("bob").command(channel["id"], f"/incident timeline add {secret['id']}")
    assert still.response["text"] == missing.response["text"]

    # Only members of the incident channel add posts; a non-member is told so.
    dave = await sandbox.user("dave").command("town-square", f"/incident timeline add {outside['id']}")
    assert "not an incident channel" in dave.response["text"]
    note = await alice.command(channel["id"], f"/incident timeline add {outside['id']} " +
                               "x" * (limits.TIMELINE_NOTE_MAX + 1))
    assert f"at most {limits.TIMELINE_NOTE_MAX}" in note.response["text"]


async def test_the_commander_hides_an_event_and_others_are_refused(sandbox, tbot):
    await make_playbook(tbot, sandbox, members=("alice", "bob"))
    _incident, channel = await start_incident(sandbox, tbot)
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    await alice.add_member(channel["id"], "bob")
    await alice.command(channel["id"], "/incident check 1.1")
    await settle(sandbox, tbot)
    rows = lines(await timeline(sandbox, "alice", channel["id"]))
    checked = next(m for m in rows if "checked step 1.1" in m.group(5))
    number = checked.group(1)

    refused = await bob.command(channel["id"], f"/incident timeline hide {number}")
    assert "Only the commander can hide" in refused.response["text"]
    assert "checked step 1.1" in await timeline(sandbox, "bob", channel["id"])
    listed = await bob.command(channel["id"], "/incident timeline --all")
    assert "Only the commander" in listed.response["text"]

    hidden = await alice.command(channel["id"], f"/incident timeline hide #{number}")
    assert f"Event `#{number}` is hidden" in hidden.response["text"]
    assert "checked step 1.1" not in await timeline(sandbox, "bob", channel["id"])
    twice = await alice.command(channel["id"], f"/incident timeline hide {number}")
    assert "already hidden" in twice.response["text"]
    everything = await timeline(sandbox, "alice", channel["id"], "--all")
    assert "checked step 1.1" in everything and "hidden by @alice" in everything
    # Numbers stay: the other events keep theirs.
    assert [m.group(1) for m in lines(await timeline(sandbox, "alice", channel["id"]))] == [
        m.group(1) for m in rows if m.group(1) != number]
    bad = await alice.command(channel["id"], "/incident timeline hide 999")
    assert "There is no event #999" in bad.response["text"]


async def test_paging_and_a_private_incident_refused_to_a_non_member(sandbox, tbot):
    await make_playbook(tbot, sandbox, title="Private drill", members=("alice",), public=False)
    _incident, channel = await start_incident(sandbox, tbot, name="Secret outage")
    alice = sandbox.user("alice")
    for n in range(limits.TIMELINE_PER_PAGE + 3):
        await alice.command(channel["id"], f"/incident {'check' if n % 2 == 0 else 'uncheck'} 1.1")
    first = await timeline(sandbox, "alice", channel["id"])
    assert "(page 1/2)" in first and len(lines(first)) == limits.TIMELINE_PER_PAGE
    assert "/incident timeline 2" in first
    second = await timeline(sandbox, "alice", channel["id"], "2")
    numbers = [int(m.group(1)) for m in lines(first) + lines(second)]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert "There is no page" not in second
    assert "choose a page from 1 to 2" in await timeline(sandbox, "alice", channel["id"], "3")

    # From a direct message, by the channel's name, like info.
    dm = await alice.dm_channel("incident")
    by_dm = await alice.post(dm, f"timeline ~{channel['name']} 2")
    await sandbox.wait_for(lambda: any("Timeline · Secret outage" in p["message"] for p in sandbox.posts(dm)
                                       if p["user_id"] == sandbox.user_id("incident")))
    assert by_dm

    # bob is in the team but not in the private channel: told exactly what a missing incident gets.
    refused = await timeline(sandbox, "bob", "town-square", f"~{channel['name']}")
    assert "Secret outage" not in refused and "No incident" in refused


async def test_unpins_edits_and_leaves_while_the_bot_restarts_are_caught_up_from_its_checkpoint(sandbox, start_bot):
    first = await start_bot()
    synchronise(sandbox, first)
    await make_playbook(first, sandbox, members=("alice", "bob"))
    incident, channel = await start_incident(sandbox, first)
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    await alice.add_member(channel["id"], "bob")
    pinned = await bob.post(channel["id"], "the cache is cold")
    edited = await bob.post(channel["id"], "rollback started")
    for post in (pinned, edited):
        await bob.react(post["id"], "pushpin")
    await settle(sandbox, first)
    await first.stop()  # a deploy: the bot is down for a moment

    await bob.unreact(pinned["id"], "pushpin")
    await bob._call("PUT", f"/api/v4/posts/{edited['id']}/patch", json_body={"message": "rollback done"})
    await bob._call("DELETE", f"/api/v4/channels/{channel['id']}/members/{bob.id}")

    second = await start_bot()
    synchronise(sandbox, second)
    await asyncio.wait_for(second.events.caught_up.wait(), 15)
    await second.events.settled()
    text = await timeline(sandbox, "alice", channel["id"])
    assert "the cache is cold" not in text and "rollback done" in text and "@bob left the channel" in text
    kinds = [e.kind for e in await second.store.timeline(incident.id)]
    assert kinds.count(EventKind.MEMBER_LEFT) == 1 and kinds.count(EventKind.POST_REMOVED) == 1

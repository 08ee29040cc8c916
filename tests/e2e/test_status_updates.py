"""Status updates on the sandbox, as people see them (docs/status-updates.md): the update dialog,
the post in the incident channel, the copies in the broadcast channels (checked for the author when
sending), the followers' direct messages, the final update on end, and a bot restart part-way."""

from __future__ import annotations

import asyncio
import re

from domain.models import EventKind, IncidentStatus
from services.updates import UPDATE_MARK
from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import card, card_text, start_incident

ID = "[a-z0-9]{26}"


async def configure(bot, incident, *, broadcast=(), followers=(), template=""):
    """Set what the playbook settings slice copies to an incident at start (broadcast channels, followers)."""
    def change(current):
        updates = current.updates.model_copy(update={"broadcast_channel_ids": tuple(broadcast), "template": template})
        return current.model_copy(update={"updates": updates, "follower_ids": tuple(followers)}), []
    updated, _ = await bot.store.mutate_incident(incident.id, change)
    return updated


async def post_update(sandbox, user: str, channel: str, text: str, next_in: str = "none", command="/incident update"):
    person = sandbox.user(user)
    opened = await person.command(channel, command)
    assert opened.dialog is not None, (opened.ephemeral, opened.error)
    return await person.submit_dialog({"text": text, "next_in": next_in})


def updates_in(sandbox, channel_id: str) -> list[dict]:
    return [p for p in sandbox.posts(channel_id) if UPDATE_MARK in (p.get("props") or {})]


async def dm_texts(sandbox, user: str) -> list[str]:
    person = sandbox.user(user)
    return [p["message"] for p in await person.read_channel("@incident", include_ephemeral=False)
            if p["user_id"] == sandbox.user_id("incident")]


def bot_calls(sandbox) -> list[str]:
    token = f"Bearer {sandbox.token_of('incident')}"
    return [f"{e.method} {re.sub(ID, '{id}', e.path)}" for e in sandbox.recording
            if e.headers.get("Authorization") == token]


async def test_an_update_reaches_the_channel_the_card_a_broadcast_channel_and_a_follower(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    incident, channel = await start_incident(sandbox, bot, "alice", "Checkout errors")
    alice = sandbox.user("alice")
    await alice.add_member("off-topic", "incident")  # the bot must be in a broadcast channel
    off_topic = sandbox.channel("acme", "off-topic")
    await configure(bot, incident, broadcast=(off_topic["id"],), followers=(sandbox.user_id("carol"),),
                    template="**Impact:** ")
    opened = await alice.command(channel["id"], "/incident update")
    text_element = opened.dialog["dialog"]["elements"][0]
    assert text_element["default"] == "**Impact:** "
    sandbox.clear_recording()
    outcome = await alice.submit_dialog({"text": "**Impact:** EU checkout fails; failover running",
                                         "next_in": "30m"})
    assert outcome.closed, (outcome.errors, outcome.error)
    await bot.scheduler.settle()  # the copies are the scheduler's update_fanout job
    calls = bot_calls(sandbox)

    [in_channel] = updates_in(sandbox, channel["id"])
    assert "Status update" in in_channel["message"] and "@alice" in in_channel["message"]
    assert "Next update due in 30 min" in in_channel["message"]
    # bob, in off-topic but not in the incident channel, reads the copy there
    bob_sees = [p["message"] for p in await sandbox.user("bob").read_channel("off-topic")]
    assert any("EU checkout fails" in m for m in bob_sees)
    # carol follows without being in the channel: a direct message from the bot
    carol_dms = await dm_texts(sandbox, "carol")
    assert len(carol_dms) == 1 and "You follow" in carol_dms[0] and "EU checkout fails" in carol_dms[0]
    assert "Last update" in card_text(card(sandbox, await bot.store.get_incident(incident.id)))
    # The cost of one update (README "Status updates"): 4 calls, 1 more for the copies, 3 per broadcast
    # channel (+1 for a role set not asked in the last 30 s), 5 per follower. The copies are sent by the
    # scheduler while the author's answer goes back: the two sequences interleave.
    assert sorted(calls) == sorted([
        "GET /api/v4/channels/{id}/members/{id}",   # the author, still in the incident channel?
        "GET /api/v4/channels/{id}",                # the incident channel's name, for the header
        "POST /api/v4/posts",                       # the update in the incident channel
        "PUT /api/v4/posts/{id}/patch",             # the card's "Last update" line
        "GET /api/v4/channels/{id}",                # the copies (a job): the incident channel's name again
        "GET /api/v4/channels/{id}",                # broadcast: the channel (team, type, archived)
        "GET /api/v4/channels/{id}/members/{id}",   # the author's membership and roles there
        "POST /api/v4/roles/names",                 # whether those roles grant create_post (then kept 30 s)
        "POST /api/v4/posts",                       # the copy
        "GET /api/v4/users/{id}",                   # follower: active? (then known)
        "GET /api/v4/channels/{id}/members/{id}",   # in the incident channel? (asked afresh)
        "GET /api/v4/teams/{id}/members/{id}",      # not: in its team (public incident)?
        "POST /api/v4/channels/direct",             # the direct channel (then known)
        "POST /api/v4/posts",                       # the direct message
    ]), calls


async def test_a_follower_outside_the_channel_is_refused_when_posting_an_update(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    incident, channel = await start_incident(sandbox, bot, "alice", "Checkout errors")
    await configure(bot, incident, followers=(sandbox.user_id("carol"),))
    refused = await post_update(sandbox, "carol", "town-square", "All fixed!",
                                command='/incident update "Checkout errors"')
    assert not refused.closed and "Only members of the incident channel" in (refused.error or "")
    assert updates_in(sandbox, channel["id"]) == []
    assert (await post_update(sandbox, "alice", channel["id"], "Still on it")).closed
    await bot.scheduler.settle()
    assert any("Still on it" in m for m in await dm_texts(sandbox, "carol"))


async def test_broadcast_refusals_are_named_and_the_rest_still_get_it(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    incident, channel = await start_incident(sandbox, bot, "alice", "Checkout errors")
    bob = sandbox.user("bob")
    created = await bob._call("POST", "/api/v4/channels", json_body={
        "team_id": sandbox.team("acme")["id"], "name": "bob-room", "display_name": "Bob room", "type": "O"})
    await bob.add_member("bob-room", "incident")  # the bot is there, alice is not
    off_topic = sandbox.channel("acme", "off-topic")  # alice is there, the bot is not
    leadership = sandbox.channel("acme", "leadership")  # private, the bot is not in it
    town = sandbox.channel("acme", "town-square")  # both are: this one gets it
    await configure(bot, incident, broadcast=(created["id"], off_topic["id"], leadership["id"], town["id"]))
    outcome = await post_update(sandbox, "alice", channel["id"], "Degraded, not down")
    assert outcome.closed
    await bot.scheduler.settle()
    assert len(updates_in(sandbox, town["id"])) == 1
    for refused in (created, off_topic, leadership):
        assert updates_in(sandbox, refused["id"]) == []
    report = (await dm_texts(sandbox, "alice"))[-1]
    assert "~bob-room: you are not a member" in report
    assert "~off-topic: I am not a member" in report
    assert "leadership" not in report and "no such channel in this team that I am in" in report
    assert len(updates_in(sandbox, channel["id"])) == 1


async def test_huge_and_hostile_text_is_posted_defused_within_one_post(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    _incident, channel = await start_incident(sandbox, bot, "alice", "Checkout errors")
    hostile = ("@channel @all @here @bob ~off-topic <script>x</script> [x](javascript:alert(1)) "
               + "_*`#|" * 3000)[:16000]
    outcome = await post_update(sandbox, "alice", channel["id"], hostile)
    assert outcome.closed, (outcome.errors, outcome.error)
    [post] = updates_in(sandbox, channel["id"])
    assert len(post["message"]) <= 16383
    for live in ("@channel", "@all", "@here", "@bob", "](javascript"):
        assert live not in post["message"]
    too_long = await post_update(sandbox, "alice", channel["id"], "x" * 16001)
    assert not too_long.closed and "text" in (too_long.errors or {})


async def test_two_people_posting_at_once_both_get_posted_and_recorded(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    incident, channel = await start_incident(sandbox, bot, "alice", "Checkout errors")
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    await alice.add_member(channel["id"], "bob")
    assert (await alice.command(channel["id"], "/incident update")).dialog is not None
    assert (await bob.command(channel["id"], "/incident update")).dialog is not None
    a, b = await asyncio.gather(alice.submit_dialog({"text": "from alice", "next_in": "15m"}),
                                bob.submit_dialog({"text": "from bob", "next_in": "1h"}))
    assert a.closed and b.closed, (a, b)
    texts = [p["message"] for p in updates_in(sandbox, channel["id"])]
    assert len(texts) == 2 and any("from alice" in t for t in texts) and any("from bob" in t for t in texts)
    timeline = [e for e in await bot.store.timeline(incident.id) if e.kind is EventKind.STATUS_UPDATE]
    assert len(timeline) == 2
    fresh = await bot.store.get_incident(incident.id)
    last = max(timeline, key=lambda e: (e.at, fresh.last_update_by == e.actor_id))
    assert fresh.last_update_by == last.actor_id and fresh.next_update_due_at == last.details["next_update_due_at"]


async def test_ending_with_a_final_update_posts_it_and_tells_the_follower(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    incident, channel = await start_incident(sandbox, bot, "alice", "Checkout errors")
    await configure(bot, incident, followers=(sandbox.user_id("carol"),))
    alice = sandbox.user("alice")
    opened = await alice.command(channel["id"], "/incident end")
    assert [e["name"] for e in opened.dialog["dialog"]["elements"]] == ["final_update"]
    assert (await alice.submit_dialog({"final_update": "Resolved by rolling back"})).closed
    await bot.scheduler.settle()
    assert (await bot.store.get_incident(incident.id)).status is IncidentStatus.ENDED
    [final] = updates_in(sandbox, channel["id"])
    assert "Final update" in final["message"] and "Resolved by rolling back" in final["message"]
    [told] = await dm_texts(sandbox, "carol")
    assert "ended by @alice" in told and "Resolved by rolling back" in told
    assert (await alice.command(channel["id"], "/incident restart")).dialog is not None
    assert (await alice.submit_dialog({})).closed
    await bot.scheduler.settle()
    assert "restarted by @alice" in (await dm_texts(sandbox, "carol"))[-1]


async def test_a_lost_answer_and_a_restart_of_the_bot_send_nothing_twice(sandbox, start_bot):
    bot = await start_bot()
    await make_playbook(bot, sandbox, members=("alice",))
    incident, channel = await start_incident(sandbox, bot, "alice", "Checkout errors")
    town = sandbox.channel("acme", "town-square")
    await configure(bot, incident, broadcast=(town["id"],), followers=(sandbox.user_id("carol"),))
    # Every post of the update is made, but the answer to the first copy is lost on the way back:
    # the client's retry is deduplicated by its pending post id, so the copy is there once.
    sandbox.faults.add("drop_after", path="/api/v4/posts", methods="POST", users=["incident"], limit=2)
    outcome = await post_update(sandbox, "alice", channel["id"], "Half-way")
    assert outcome.closed, (outcome.errors, outcome.error)
    await bot.scheduler.settle()
    assert sandbox.faults.counts()["drop_after"] == 2
    sandbox.faults.clear()
    await bot.stop()
    bot = await start_bot()  # same data directory: a restarted bot re-sends no update
    assert (await post_update(sandbox, "alice", channel["id"], "After the restart")).closed
    await bot.scheduler.settle()
    for channel_id in (channel["id"], town["id"]):
        texts = [p["message"] for p in updates_in(sandbox, channel_id)]
        assert sum("Half-way" in t for t in texts) == 1 and sum("After the restart" in t for t in texts) == 1
    carol = await dm_texts(sandbox, "carol")
    assert sum("Half-way" in t for t in carol) == 1 and sum("After the restart" in t for t in carol) == 1

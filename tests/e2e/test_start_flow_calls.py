"""The start flow's cost (issue 15): at most 8 REST calls for a normal start, none sure to fail, no GET
of what the bot already knows, recovery-only reads only when recovering; a toggle costs 2 calls.

Counted from the sandbox recording: every request made with the bot's token between the user typing
``/incident start`` and the dialog being answered."""

from __future__ import annotations

import re

import aiohttp

from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import all_incidents, card

ID = "[a-z0-9]{26}"


def bot_calls(sandbox) -> list[tuple[str, str, int]]:
    token = f"Bearer {sandbox.token_of('incident')}"
    return [(e.method, e.path, e.status) for e in sandbox.recording if e.headers.get("Authorization") == token]


async def start(sandbox, user: str, name: str, where: str = "town-square") -> dict:
    person = sandbox.user(user)
    result = await person.command(where, f"/incident start {name}")
    assert result.dialog is not None, (result.ephemeral, result.error)
    playbook = result.dialog["dialog"]["elements"][0]["options"][0]["value"]
    outcome = await person.submit_dialog({"playbook": playbook, "name": name, "description": None})
    assert outcome.closed, (outcome.errors, outcome.error)
    return outcome


def shape(calls) -> list[str]:
    """Method and path with ids replaced by {id}, for comparing call lists."""
    return [f"{method} {re.sub(ID, '{id}', path)}" for method, path, _ in calls]


async def test_a_start_costs_at_most_eight_rest_calls_and_the_user_sees_it_all(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    await start(sandbox, "alice", "Warm up")  # the first command in a channel learns its team, once
    sandbox.clear_recording()
    await start(sandbox, "alice", "Payments down")
    calls = bot_calls(sandbox)
    assert shape(calls) == [
        "POST /api/v4/actions/dialogs/open",            # /incident start
        "GET /api/v4/teams/{id}/members/{id}",          # submitted: still in the team?
        "POST /api/v4/channels",                        # the create answer carries the channel's name
        "POST /api/v4/channels/{id}/members",
        "POST /api/v4/posts",                           # opening post
        "POST /api/v4/posts",                           # card
        "POST /api/v4/posts/{id}/pin",
        "POST /api/v4/posts",                           # "Your incident ... has started" by DM (DM id kept)
    ], calls
    assert len(calls) <= 8 and all(status < 400 for _, _, status in calls), calls
    # What alice sees: the DM names the channel, which exists (a live ~mention), the card is pinned.
    (incident,) = [i for i in await all_incidents(bot) if i.name == "Payments down"]
    channel = sandbox.channel_by_id(incident.channel_id)
    alice = sandbox.user("alice")
    dm = await alice.dm_channel("incident")
    told = [p["message"] for p in sandbox.posts(dm) if "Payments down" in p["message"]]
    assert told == [f"Your incident **Payments down** has started: ~{channel['name']}. You are its commander."]
    assert sandbox.channel("acme", channel["name"])["id"] == incident.channel_id
    assert card(sandbox, incident)["id"] == incident.card_post_id and sandbox.pinned(incident.channel_id)
    opening = [p for p in sandbox.posts(incident.channel_id) if p["message"].startswith("This incident has been")]
    assert [p["message"] for p in opening] == ["This incident has been started by @alice."]
    assert sandbox.channel_members(incident.channel_id) == {alice.id, sandbox.user_id("incident")}
    # Nothing half-written: no journal, no name claim left.
    assert await bot.store.settings_with_prefix("start:") == {}
    assert await bot.store.settings_with_prefix("start-channel:") == {}


async def test_the_first_start_of_a_person_asks_for_the_dm_channel_once(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    for user, name in (("alice", "One"), ("bob", "Two"), ("alice", "Three"), ("bob", "Four")):
        await start(sandbox, user, name)
    directs = [c for c in bot_calls(sandbox) if c[1] == "/api/v4/channels/direct"]
    assert len(directs) == 2, directs  # one per person, whatever the number of starts
    for user, names in (("alice", ("One", "Three")), ("bob", ("Two", "Four"))):
        dm = await sandbox.user(user).dm_channel("incident")
        for name in names:
            assert [p for p in sandbox.posts(dm) if f"**{name}** has started" in p["message"]]


async def test_no_request_sure_to_fail_and_no_read_of_what_the_bot_knows(sandbox, bot):
    """A bot that is not a system admin never tries an ephemeral post (learnt at login from its roles),
    and a fresh start reads neither the channel by name, nor its posts, nor the channel it created."""
    await make_playbook(bot, sandbox, members=("alice",))
    sandbox.clear_recording()
    for name in ("Alpha", "Beta"):
        await start(sandbox, "alice", name)
    calls = bot_calls(sandbox)
    assert [c for c in calls if c[2] >= 400] == []
    paths = shape(calls)
    assert "POST /api/v4/posts/ephemeral" not in paths
    assert not [p for p in paths if "/channels/name/" in p or (p.endswith("/posts") and p.startswith("GET"))]
    created = {c["id"] for c in sandbox.world.channels.values() if c["display_name"] in ("Alpha", "Beta")}
    assert len(created) == 2 and not [c for c in calls if c[0] == "GET" and c[1].rsplit("/", 1)[-1] in created]


async def test_the_bot_learns_its_rights_once_at_login(sandbox, start_bot):
    sandbox.clear_recording()
    bot = await start_bot()
    roles = [c for c in bot_calls(sandbox) if c[1] == "/api/v4/roles/names"]
    assert roles == [("POST", "/api/v4/roles/names", 200)] and bot.client.may_post_ephemeral is False


async def test_an_admin_bot_tells_the_creator_privately_in_the_channel(sandbox, start_bot):
    sandbox.world.users[sandbox.user_id("incident")]["roles"] = "system_user system_admin"
    sandbox.clear_recording()
    bot = await start_bot()
    assert bot.client.may_post_ephemeral is True
    assert not [c for c in bot_calls(sandbox) if c[1] == "/api/v4/roles/names"]  # the role name says it all
    await make_playbook(bot, sandbox, members=("alice",))
    await start(sandbox, "alice", "Quiet one")
    alice = sandbox.user("alice")
    town = sandbox.channel("acme", "town-square")["id"]
    await sandbox.wait_for(lambda: [p for p in alice.ephemeral(town) if "Quiet one" in p["message"]])
    dm = await alice.dm_channel("incident")
    assert not [p for p in sandbox.posts(dm) if "Quiet one" in p["message"]]


async def test_a_toggle_costs_two_rest_calls(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice",))
    await start(sandbox, "alice", "Toggled")
    (incident,) = [i for i in await all_incidents(bot) if i.name == "Toggled"]
    posted = card(sandbox, incident)
    step = posted["props"]["attachments"][2]
    sandbox.clear_recording()
    clicked = await sandbox.user("alice").click(posted["id"], step["actions"][0]["id"])
    assert clicked.status == 200, clicked.error
    await sandbox.wait_for(lambda: card(sandbox, incident)["props"]["attachments"][2]["text"].startswith("✅"))
    await sandbox.wait_for(lambda: len(bot_calls(sandbox)) >= 2)
    assert shape(bot_calls(sandbox)) == ["POST /api/v4/posts", "PUT /api/v4/posts/{id}/patch"]


async def test_someone_out_of_the_team_by_submission_time_starts_nothing(sandbox, bot):
    """The team membership is asked when the dialog is submitted: a submission does not prove it came
    through Mattermost (whoever can reach the bot may post their own still-valid dialog state), so
    someone who left the team since opening the dialog is refused even when posting it directly."""
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    bob = sandbox.user("bob")
    result = await bob.command("town-square", "/incident start Late leaver")
    dialog = result.dialog["dialog"]
    team_id = sandbox.team("acme")["id"]
    member = sandbox.world.team_members[team_id].pop(bob.id)  # gone from the team, as far as REST says
    try:
        body = {"type": "dialog_submission", "callback_id": dialog["callback_id"], "state": dialog["state"],
                "user_id": bob.id, "channel_id": sandbox.channel("acme", "town-square")["id"],
                "team_id": team_id, "cancelled": False,
                "submission": {"playbook": dialog["elements"][0]["options"][0]["value"], "name": "Late leaver"}}
        async with aiohttp.ClientSession() as http:
            async with http.post(bot.ctx.dialog_url, json=body) as answer:
                assert answer.status == 200
                reply = await answer.json()
    finally:
        sandbox.world.team_members[team_id][bob.id] = member
    assert "playbook" in (reply.get("error") or "").lower(), reply
    assert not [c for c in sandbox.world.channels.values() if c["display_name"] == "Late leaver"]
    assert not [i for i in await all_incidents(bot) if i.name == "Late leaver"]

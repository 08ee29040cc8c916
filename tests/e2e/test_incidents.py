"""Incidents end to end: people start and work incidents through the sandbox as they would in chat."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.e2e.conftest import make_playbook


def bot_id(sandbox):
    return sandbox.user_id("incident")


def channel_posts(sandbox, channel_id, *, by_bot=True):
    return [p for p in sandbox.posts(channel_id) if not p.get("type", "").startswith("system_")
            and (not by_bot or p["user_id"] == bot_id(sandbox))]


async def start_incident(sandbox, bot, user="alice", name="Checkout errors", *, playbook=None, description="",
                         where="town-square", extra=""):
    """Type /incident start, fill in the dialog, return (incident, channel)."""
    person = sandbox.user(user)
    result = await person.command(where, f"/incident start {extra}{name}".rstrip())
    assert result.status == 200, result.error
    assert result.dialog is not None, result.ephemeral
    dialog = result.dialog["dialog"]
    options = {o["text"]: o["value"] for o in dialog["elements"][0]["options"]}
    chosen = options[playbook] if playbook else next(iter(options.values()))
    outcome = await person.submit_dialog({"playbook": chosen, "name": name, "description": description})
    assert outcome.closed, (outcome.errors, outcome.error)
    incidents = [i for i in (await all_incidents(bot)) if i.name == name]
    assert len(incidents) == 1
    incident = incidents[0]
    return incident, sandbox.channel_by_id(incident.channel_id)


async def all_incidents(bot):
    from storage import IncidentSort  # noqa: F401  (keeps the import local to the helper)
    team_ids = {team_id for team_id in bot.tokens.teams()}
    found = []
    for team_id in team_ids:
        page = await bot.store.list_incidents(team_id, is_admin=True, per_page=100)
        found.extend(page.items)
    return found


def card(sandbox, incident):
    posts = {p["id"]: p for p in sandbox.posts(incident.channel_id)}
    return posts[incident.card_post_id]


def card_text(post) -> str:
    parts = [post["message"]]
    for attachment in post["props"].get("attachments", []):
        parts.extend(str(attachment.get(key, "")) for key in ("title", "text"))
        parts.extend(f"{f['title']}: {f['value']}" for f in attachment.get("fields", []))
    return "\n".join(parts)


def button_names(post) -> list[str]:
    return [action["name"] for attachment in post["props"].get("attachments", [])
            for action in attachment.get("actions", [])]


def step_button(post, label: str, step_text: str) -> str:
    """The id of the button ``label`` on the card row whose text contains ``step_text``."""
    for attachment in post["props"].get("attachments", []):
        if step_text in attachment.get("text", ""):
            for action in attachment.get("actions", []):
                if action["name"] == label:
                    return action["id"]
    raise AssertionError(f"no {label!r} button for {step_text!r}")


async def fresh(bot, incident):
    return await bot.store.get_incident(incident.id)


# Starting -------------------------------------------------------------------------------------

async def test_start_creates_channel_posts_and_pinned_card(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    incident, channel = await start_incident(sandbox, bot, "bob", "Checkout errors", description="EU users see 500s")
    assert channel["display_name"] == "Checkout errors"
    assert channel["name"] == "checkout-errors"
    assert channel["type"] == "O"
    assert sandbox.channel_members(channel["id"]) >= {sandbox.user_id("bob"), bot_id(sandbox)}
    assert incident.commander_id == sandbox.user_id("bob")
    messages = [p["message"] for p in channel_posts(sandbox, channel["id"])]
    assert messages[0] == "This incident has been started by @bob."
    pinned = sandbox.pinned(channel["id"])
    assert [p["id"] for p in pinned] == [incident.card_post_id]
    text = card_text(pinned[0])
    assert "Commander: @bob" in text and "Status: Ongoing" in text and "(1/3) Triage" in text
    assert "Acknowledge the alert" in text and "Stage 2: Investigation — 0/2 done" in text
    assert {"Next stage ▶", "Change commander", "End incident", "Check", "Assign"} <= set(button_names(pinned[0]))
    # The integration's URL and context never reach clients.
    for attachment in pinned[0]["props"]["attachments"]:
        for action in attachment.get("actions", []):
            assert "integration" not in action
    # The creator is told where the incident is.
    dm = await sandbox.user("bob").dm_channel("incident")
    note = await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm) if "~checkout-errors" in p["message"]])
    assert "has started" in note[0]["message"]
    events = await bot.store.timeline(incident.id)
    assert [e.kind.value for e in events] == ["created", "member_joined"]  # the start, and its creator joining


async def test_private_playbook_makes_private_channel_and_name_clash_gets_suffix(sandbox, bot):
    await make_playbook(bot, sandbox, title="Security", public=False)
    first, first_channel = await start_incident(sandbox, bot, name="Leaked key!")
    assert first_channel["type"] == "P" and first_channel["name"] == "leaked-key"
    second, second_channel = await start_incident(sandbox, bot, name="Leaked key?")
    assert second_channel["name"].startswith("leaked-key-") and len(second_channel["name"]) == len("leaked-key-") + 4
    assert second.channel_id != first.channel_id


async def test_start_dialog_lists_only_my_playbooks_sorted(sandbox, bot):
    await make_playbook(bot, sandbox, title="Zebra outage", members=("alice", "bob"))
    await make_playbook(bot, sandbox, title="alpha response", members=("bob",))
    await make_playbook(bot, sandbox, title="Carol only", members=("carol",))
    result = await sandbox.user("bob").command("town-square", "/incident start DB down")
    elements = result.dialog["dialog"]["elements"]
    assert [o["text"] for o in elements[0]["options"]] == ["alpha response", "Zebra outage"]
    assert elements[1]["default"] == "DB down"


async def test_no_playbooks_says_how_to_create_one(sandbox, bot):
    result = await sandbox.user("dave").command("town-square", "/incident start")
    assert result.dialog is None
    assert "/incident playbook create" in result.ephemeral[0]


async def test_start_dialog_validates_the_name_and_keeps_the_dialog_open(sandbox, bot):
    await make_playbook(bot, sandbox)
    alice = sandbox.user("alice")
    result = await alice.command("town-square", "/incident start")
    playbook_id = result.dialog["dialog"]["elements"][0]["options"][0]["value"]
    for bad in ("x", "y" * 65, "   "):
        outcome = await alice.submit_dialog({"playbook": playbook_id, "name": bad, "description": None})
        assert not outcome.closed and "name" in outcome.errors
    assert await all_incidents(bot) == []
    outcome = await alice.submit_dialog({"playbook": playbook_id, "name": "ok", "description": None})
    assert outcome.closed
    assert len(await all_incidents(bot)) == 1


async def test_non_member_of_playbook_cannot_start_with_it(sandbox, bot):
    playbook = await make_playbook(bot, sandbox, members=("alice",))
    await make_playbook(bot, sandbox, title="Bob's", members=("bob",))
    bob = sandbox.user("bob")
    result = await bob.command("town-square", "/incident start Sneaky")
    assert [o["value"] for o in result.dialog["dialog"]["elements"][0]["options"]] != [playbook.id]
    # Bob edits the submission to name alice's playbook: refused, nothing created.
    outcome = await bob.submit_dialog({"playbook": playbook.id, "name": "Sneaky", "description": None})
    assert not outcome.closed and "not found" in (outcome.error or "").lower()
    assert await all_incidents(bot) == []


async def test_start_from_a_post_quotes_it(sandbox, bot):
    await make_playbook(bot, sandbox)
    alice = sandbox.user("alice")
    post = await alice.post("town-square", "Checkout is **failing** for EU customers")
    incident, channel = await start_incident(sandbox, bot, name="EU checkout", extra=f"--post {post['id']} ")
    assert incident.source_post_id == post["id"]
    opening = channel_posts(sandbox, channel["id"])[0]["message"]
    assert "> Checkout is **failing** for EU customers" in opening


async def test_start_from_a_post_the_user_cannot_read_does_not_quote_it(sandbox, bot):
    await make_playbook(bot, sandbox, members=("bob",))
    secret = await sandbox.user("alice").post("leadership", "Layoffs planned for Q3")
    permalink = f"{sandbox.url}/acme/pl/{secret['id']}"
    incident, channel = await start_incident(sandbox, bot, "bob", name="Curious", extra=f"--post {permalink} ")
    assert incident.source_post_id is None
    assert all("Layoffs" not in p["message"] for p in sandbox.posts(channel["id"]))
    dm = await sandbox.user("bob").dm_channel("incident")
    note = await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm) if "~curious" in p["message"]])
    assert "not quoted" in note[0]["message"]


async def test_reaction_trigger_offers_a_start_button(sandbox, bot):
    await make_playbook(bot, sandbox, members=("bob",))
    bob = sandbox.user("bob")
    post = await sandbox.user("carol").post("town-square", "Payments API latency is 10s")
    await bob.react(post["id"], "rotating_light")
    dm = await bob.dm_channel("incident")
    offer = await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm) if "reacted" in p["message"]])
    action = await bob.click(offer[0]["id"], "Start incident from this post")
    assert action.status == 200 and action.dialog is not None
    options = action.dialog["dialog"]["elements"][0]["options"]
    outcome = await bob.submit_dialog({"playbook": options[0]["value"], "name": "Slow payments", "description": None})
    assert outcome.closed
    incident = next(i for i in await all_incidents(bot) if i.name == "Slow payments")
    assert incident.source_post_id == post["id"]
    assert "> Payments API latency is 10s" in channel_posts(sandbox, incident.channel_id)[0]["message"]


async def test_other_emoji_or_bot_reactions_do_nothing(sandbox, bot):
    bob = sandbox.user("bob")
    post = await sandbox.user("carol").post("town-square", "fine")
    await bob.react(post["id"], "thumbsup")
    dm = await bob.dm_channel("incident")
    await bob.post(dm, "help")  # the bot answers this; by then the reaction has been handled
    await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm) if p["user_id"] == bot_id(sandbox)])
    assert not [p for p in sandbox.posts(dm) if "reacted" in p["message"]]


async def test_start_by_direct_message(sandbox, bot):
    await make_playbook(bot, sandbox, members=("carol",))
    carol = sandbox.user("carol")
    dm = await carol.dm_channel("incident")
    await carol.post(dm, "start")
    offer = await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm) if p["props"].get("attachments")])
    action = await carol.click(offer[0]["id"], "Start incident in ACME")
    assert action.dialog is not None
    options = action.dialog["dialog"]["elements"][0]["options"]
    outcome = await carol.submit_dialog({"playbook": options[0]["value"], "name": "From DM", "description": None})
    assert outcome.closed
    assert [i.name for i in await all_incidents(bot)] == ["From DM"]


# Working the incident ----------------------------------------------------------------------

async def test_commander_change_by_command_and_refusals(sandbox, bot):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    alice = sandbox.user("alice")
    result = await alice.command(channel["id"], "/incident commander")
    assert "@alice" in result.ephemeral[0]
    # bob is not in the channel yet
    result = await alice.command(channel["id"], "/incident commander @bob")
    assert "add @bob to the channel first" in result.ephemeral[0]
    assert (await fresh(bot, incident)).commander_id == sandbox.user_id("alice")
    # Mattermost itself stops a non-member from typing commands in the channel
    result = await sandbox.user("dave").command(channel["id"], "/incident commander @dave")
    assert result.status == 403 and result.ephemeral == []
    result = await alice.command(channel["id"], "/incident commander @incident")
    assert "bot cannot be the commander" in result.ephemeral[0]
    assert (await fresh(bot, incident)).commander_id == sandbox.user_id("alice")


async def add_member(sandbox, channel_id, username, by="alice"):
    import aiohttp
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {sandbox.user(by).token}"}) as http:
        async with http.post(f"{sandbox.url}/api/v4/channels/{channel_id}/members",
                             json={"user_id": sandbox.user_id(username)}) as response:
            assert response.status == 201, await response.text()


async def test_commander_change_by_button_dialog(sandbox, bot):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    await add_member(sandbox, channel["id"], "carol")
    alice = sandbox.user("alice")
    action = await alice.click(incident.card_post_id, "Change commander")
    options = {o["text"] for o in action.dialog["dialog"]["elements"][0]["options"]}
    assert options == {"@alice", "@carol"}  # channel members, no bots
    outcome = await alice.submit_dialog({"commander": sandbox.user_id("carol")})
    assert outcome.closed
    assert (await fresh(bot, incident)).commander_id == sandbox.user_id("carol")
    assert "Commander: @carol" in card_text(card(sandbox, incident))
    assert any(p["message"] == "@alice changed the commander to @carol." for p in channel_posts(sandbox, channel["id"]))
    # a tampered submission naming a non-member is refused and the dialog stays open
    await alice.click(incident.card_post_id, "Change commander")
    outcome = await alice.submit_dialog({"commander": sandbox.user_id("dave")})
    assert not outcome.closed and "add @dave to the channel first" in outcome.errors["commander"]


async def test_steps_stages_and_card_follow_every_change(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    incident, channel = await start_incident(sandbox, bot)
    await add_member(sandbox, channel["id"], "bob")
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    cid = channel["id"]

    assert (await alice.command(cid, "/incident check 1.1")).ephemeral == []
    assert "✅ **1.1** Acknowledge the alert" in card_text(card(sandbox, incident))
    assert "1.1 is already done" in (await alice.command(cid, "/incident check 1")).ephemeral[0]

    # a button click on the card, by another member
    clicked = await bob.click(incident.card_post_id, step_button(card(sandbox, incident), "Check", "Assess customer impact"))
    assert clicked.status == 200
    text = card_text(card(sandbox, incident))
    assert "✅ **1.2** Assess customer impact · done by @bob" in text
    await bob.click(incident.card_post_id, step_button(card(sandbox, incident), "Uncheck", "Assess customer impact"))
    assert "⬜ **1.2** Assess customer impact" in card_text(card(sandbox, incident))

    await alice.command(cid, "/incident assign 1.3 @bob")
    assert "assigned to @bob" in card_text(card(sandbox, incident))
    await alice.command(cid, "/incident assign 1.3 none")
    assert "assigned to" not in card_text(card(sandbox, incident))
    result = await alice.command(cid, "/incident assign 1.3 @dave")
    assert "add that user to the channel first" in result.ephemeral[0]

    await alice.command(cid, "/incident step add Call the vendor")
    await alice.command(cid, "/incident step rename 1.4 Call the payment vendor")
    await alice.command(cid, "/incident step move 1.4 1")
    await alice.command(cid, "/incident step add 3 Update the status page")
    await alice.command(cid, "/incident step remove 1.3")
    current = await fresh(bot, incident)
    assert [s.title for s in current.stages[0].steps] == [
        "Call the payment vendor", "Acknowledge the alert", "Page the on-call"]
    assert [s.title for s in current.stages[2].steps][-1] == "Update the status page"

    await alice.command(cid, "/incident stage next")
    assert "(2/3) Investigation" in card_text(card(sandbox, incident))
    await bob.click(incident.card_post_id, "◀ Previous stage")
    assert "(1/3) Triage" in card_text(card(sandbox, incident))
    await alice.command(cid, "/incident stage 3")
    assert "Stage: (3/3) Resolution" in card_text(card(sandbox, incident))
    assert "Next stage ▶" not in button_names(card(sandbox, incident))
    result = await alice.command(cid, "/incident stage next")
    assert "already the last stage" in result.ephemeral[0]
    result = await alice.command(cid, "/incident stage 9")
    assert "Stage 9 does not exist" in result.ephemeral[0]

    timeline = await bot.store.timeline(incident.id)
    # People joining the channel are on the timeline too (issue 18); here, the checklist's own events.
    assert [e.details["user_id"] for e in timeline if e.kind.value == "member_joined"] == [
        sandbox.user_id("alice"), sandbox.user_id("bob")]  # alice with the start, bob when she added him
    kinds = [e.kind.value for e in timeline if e.kind.value != "member_joined"]
    assert kinds == ["created", "step_checked", "step_checked", "step_unchecked", "step_assigned", "step_assigned",
                     "step_added", "step_renamed", "step_moved", "step_added", "step_removed",
                     "stage_changed", "stage_changed", "stage_changed"]
    announcements = [p["message"] for p in channel_posts(sandbox, cid)]
    assert "@alice checked 1.1 **Acknowledge the alert**." in announcements
    assert "@bob checked 1.2 **Assess customer impact**." in announcements
    assert "@alice assigned 1.3 **Page the on-call** to @bob." in announcements
    assert "@alice moved the incident to stage 3/3: **Resolution**." in announcements


async def test_bad_step_references_are_explained(sandbox, bot):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    alice = sandbox.user("alice")
    cases = {"/incident check": "Usage: `/incident check S.N`", "/incident check 7": "Step 1.7 does not exist",
             "/incident check 4.1": "this incident has 3 stages", "/incident check one": "is not a step reference",
             "/incident step frob": "Usage: `/incident step", "/incident assign 1.1": "Usage: `/incident assign"}
    for text, expected in cases.items():
        result = await alice.command(channel["id"], text)
        assert result.ephemeral and expected in result.ephemeral[0], (text, result.ephemeral)
    assert [e.kind.value for e in await bot.store.timeline(incident.id)] == ["created", "member_joined"]


async def test_non_member_cannot_check_a_step(sandbox, bot):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    dave = sandbox.user("dave")
    result = await dave.command(channel["id"], "/incident check 1.1")
    assert result.status == 403  # Mattermost refuses commands from non-members of the channel
    # dave can read the public channel, but released servers refuse his click on its buttons
    # (doPostAction: read_channel_content at channel scope), so the bot is never asked
    action = await dave.click(incident.card_post_id, step_button(card(sandbox, incident), "Check", "Acknowledge"))
    assert action.status == 403 and not action.ephemeral
    assert (await fresh(bot, incident)).steps_done == 0


async def test_commands_outside_an_incident_channel_say_so(sandbox, bot):
    alice = sandbox.user("alice")
    for text in ("/incident check 1.1", "/incident commander", "/incident stage next", "/incident end",
                 "/incident announce ~off-topic", "/incident step add x"):
        result = await alice.command("town-square", text)
        assert "not an incident channel" in result.ephemeral[0], text


async def test_run_a_step_command(sandbox, bot):
    await make_playbook(bot, sandbox, stages=(("Triage", ("Open the bridge", "Unknown tool", "Set the header")),),
                        commands={"Open the bridge": "/incident help", "Unknown tool": "/nosuchcommand now",
                                  "Set the header": "/header 🔴 Investigating"})
    incident, channel = await start_incident(sandbox, bot)
    alice = sandbox.user("alice")
    assert "Run" in button_names(card(sandbox, incident))
    result = await alice.command(channel["id"], "/incident run 1.1")
    # Command Center's own command runs as alice: she gets its answer, as if she had typed it.
    assert len(result.ephemeral) == 1 and "#### Command Center" in result.ephemeral[0]
    assert any("@alice ran 1.1 **Open the bridge**: `/incident help`" in p["message"]
               for p in channel_posts(sandbox, channel["id"]))
    result = await alice.command(channel["id"], "/incident run 1.2")
    assert "yourself" in result.ephemeral[0] and "/nosuchcommand now" in result.ephemeral[0]
    # A built-in that only touches the incident channel runs as the bot, in the incident channel.
    assert (await alice.command(channel["id"], "/incident run 1.3")).ephemeral == []
    assert sandbox.channel_by_id(channel["id"])["header"] == "🔴 Investigating"
    kinds = [e.kind.value for e in await bot.store.timeline(incident.id)]
    assert kinds.count("step_run") == 2  # the command handed back was not run


async def test_end_and_restart_with_confirmation(sandbox, bot):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    alice = sandbox.user("alice")
    await alice.command(channel["id"], "/incident check 1.1")
    result = await alice.command(channel["id"], "/incident end")
    assert result.dialog is not None
    # the one element is the optional final update (docs/status-updates.md); leaving it empty just ends
    assert [(e["name"], e["optional"]) for e in result.dialog["dialog"]["elements"]] == [("final_update", True)]
    outcome = await alice.cancel_dialog()
    assert (await fresh(bot, incident)).is_ongoing
    await alice.command(channel["id"], "/incident end")
    outcome = await alice.submit_dialog({})
    assert outcome.closed
    ended = await fresh(bot, incident)
    assert not ended.is_ongoing and ended.ended_at is not None
    closing = channel_posts(sandbox, channel["id"])[-1]["message"]
    assert closing.startswith("This incident has been ended by @alice.") and "steps done: **1/7**" in closing
    post = card(sandbox, incident)
    assert "Status: Ended" in card_text(post) and button_names(post) == ["Restart incident", "Follow"]
    # Ended incidents are read-only
    result = await alice.command(channel["id"], "/incident check 1.2")
    assert "has ended" in result.ephemeral[0] and "/incident restart" in result.ephemeral[0]
    result = await alice.command(channel["id"], "/incident end")
    assert "already ended" in result.ephemeral[0]
    # Restart by the card button
    action = await alice.click(incident.card_post_id, "Restart incident")
    assert action.dialog is not None
    assert (await alice.submit_dialog({})).closed
    assert (await fresh(bot, incident)).is_ongoing
    assert "Status: Ongoing" in card_text(card(sandbox, incident))
    kinds = [e.kind.value for e in await bot.store.timeline(incident.id)]
    assert kinds[-2:] == ["ended", "restarted"]


async def _new_channel(sandbox, name: str, ctype: str, *members: str) -> str:
    """A channel alice makes (she stays in it), with ``members`` added."""
    import aiohttp
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {sandbox.user('alice').token}"}) as http:
        async with http.post(f"{sandbox.url}/api/v4/channels", json={
                "team_id": sandbox.team("acme")["id"], "name": name, "display_name": name, "type": ctype}) as response:
            cid = (await response.json())["id"]
    for member in members:
        await sandbox.user("alice").add_member(cid, member)
    return cid


def _refusal(text: str, name: str) -> str:
    line = next(line for line in text.splitlines() if line.startswith(f"- ~{name}:"))
    return line.split(":", 1)[1]


async def test_announce_only_where_the_user_can_post(sandbox, bot):
    await make_playbook(bot, sandbox, members=("bob",))
    _incident, channel = await start_incident(sandbox, bot, "bob", "Search is down")
    bob = sandbox.user("bob")
    off_topic = sandbox.channel("acme", "off-topic")["id"]
    leadership = sandbox.channel("acme", "leadership")["id"]
    war_room = await _new_channel(sandbox, "war-room", "O")
    before = {cid: len(sandbox.posts(cid)) for cid in (leadership, war_room)}
    result = await bob.command(channel["id"], "/incident announce ~off-topic ~leadership ~war-room ~nope town-square")
    text = result.ephemeral[0]
    assert "Announced in ~off-topic." in text
    assert "~war-room: you can only announce in channels you are a member of" in text
    assert "~leadership: no such channel" in text  # private and not visible: nothing leaks
    assert "~nope: no such channel" in text and "`town-square` is not a channel" in text
    assert any(p["message"] == "@bob started an incident in ~search-is-down: **Search is down**"
               for p in sandbox.posts(off_topic))
    assert len(sandbox.posts(leadership)) == before[leadership]
    # To see that bob is not in ~war-room the bot had to join it (real Mattermost shows members
    # only to members); it left again, and announced nothing there.
    bot_id = sandbox.user_id("incident")
    assert [p["type"] for p in sandbox.posts(war_room)[before[war_room]:]] == \
        ["system_join_channel", "system_leave_channel"]
    assert bot_id not in sandbox.channel_members(war_room)


async def test_announce_into_a_public_channel_the_bot_is_not_in(sandbox, bot):
    await make_playbook(bot, sandbox, members=("bob",))
    _incident, channel = await start_incident(sandbox, bot, "bob", "Search is down")
    off_topic = sandbox.channel("acme", "off-topic")["id"]
    assert sandbox.user_id("incident") not in sandbox.channel_members(off_topic)
    result = await sandbox.user("bob").command(channel["id"], "/incident announce ~off-topic")
    assert result.ephemeral == ["Announced in ~off-topic."]
    assert sandbox.posts(off_topic)[-1]["message"] == "@bob started an incident in ~search-is-down: **Search is down**"
    assert sandbox.user_id("incident") in sandbox.channel_members(off_topic)


async def test_announce_into_a_private_channel_the_bot_is_not_in(sandbox, bot):
    await make_playbook(bot, sandbox, members=("carol",))
    _incident, channel = await start_incident(sandbox, bot, "carol", "Search is down")
    leadership = sandbox.channel("acme", "leadership")["id"]   # carol is in it, the bot is not
    before = len(sandbox.posts(leadership))
    carol = sandbox.user("carol")
    text = (await carol.command(channel["id"], "/incident announce ~leadership ~nope")).ephemeral[0]
    # The same answer as for a channel that does not exist, and it says what a member can do.
    assert _refusal(text, "leadership") == _refusal(text, "nope")
    assert "add @incident to it first" in _refusal(text, "leadership")
    assert len(sandbox.posts(leadership)) == before
    await carol.add_member(leadership, "incident")
    result = await carol.command(channel["id"], "/incident announce ~leadership")
    assert result.ephemeral == ["Announced in ~leadership."]
    assert sandbox.posts(leadership)[-1]["message"].startswith("@carol started an incident")


async def test_announce_into_a_private_channel_the_user_is_not_in(sandbox, bot):
    await make_playbook(bot, sandbox, members=("bob",))
    _incident, channel = await start_incident(sandbox, bot, "bob", "Search is down")
    secret = await _new_channel(sandbox, "secret-ops", "P", "incident")   # the bot is in it, bob is not
    before = len(sandbox.posts(secret))
    text = (await sandbox.user("bob").command(channel["id"], "/incident announce ~secret-ops ~nope")).ephemeral[0]
    assert _refusal(text, "secret-ops") == _refusal(text, "nope")   # nothing tells bob it exists
    assert len(sandbox.posts(secret)) == before


# Hostile text and concurrency -------------------------------------------------------------

@pytest.mark.parametrize("name", ["@all hands: DB down", "**bold** [link](http://evil) `x`", "@channel " + "é" * 50])
async def test_names_with_mentions_and_markdown_are_harmless(sandbox, bot, name):
    # Step titles render limited markdown (issue 14): an http link would be a link, a javascript: one never is.
    await make_playbook(bot, sandbox, stages=(("@here stage", ("@channel step [x](javascript:evil)",)),))
    incident, channel = await start_incident(sandbox, bot, name=name)
    assert channel["display_name"] == name
    post = card(sandbox, incident)
    body = post["message"] + "\n" + "\n".join(a.get("text", "") for a in post["props"]["attachments"])
    for mention in ("@all", "@channel", "@here"):
        assert mention not in body
    assert "](http://evil)" not in body and "](javascript" not in body
    await sandbox.user("alice").command(channel["id"], "/incident check 1.1")
    announcement = channel_posts(sandbox, channel["id"])[-1]["message"]
    assert "@channel" not in announcement and "](http" not in announcement


async def test_very_long_step_titles_keep_the_card_intact(sandbox, bot):
    long_title = "Investigate " + "very " * 46 + "long"
    await make_playbook(bot, sandbox, stages=(("Triage", tuple(f"{long_title} {i}" for i in range(50))),))
    incident, channel = await start_incident(sandbox, bot, name="Long one")
    post = card(sandbox, incident)
    assert len(post["props"]["attachments"]) == 52  # header, stage line, 50 steps
    await sandbox.user("alice").command(channel["id"], "/incident check 1.50")
    assert "✅ **1.50**" in card_text(card(sandbox, incident))


async def test_double_click_gives_one_result(sandbox, bot):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    alice = sandbox.user("alice")
    button = step_button(card(sandbox, incident), "Check", "Acknowledge")
    results = await asyncio.gather(alice.click(incident.card_post_id, button),
                                   alice.click(incident.card_post_id, button))
    assert all(r.status == 200 for r in results)
    kinds = [e.kind.value for e in await bot.store.timeline(incident.id)]
    assert kinds.count("step_checked") == 1
    assert sum("checked 1.1" in p["message"] for p in channel_posts(sandbox, channel["id"])) == 1


async def test_two_users_clicking_at_once_both_count(sandbox, bot):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    incident, channel = await start_incident(sandbox, bot)
    await add_member(sandbox, channel["id"], "bob")
    post = card(sandbox, incident)
    first = step_button(post, "Check", "Acknowledge")
    second = step_button(post, "Check", "Assess customer impact")
    third = step_button(post, "Check", "Page the on-call")
    await asyncio.gather(sandbox.user("alice").click(incident.card_post_id, first),
                         sandbox.user("bob").click(incident.card_post_id, second),
                         sandbox.user("alice").command(channel["id"], "/incident check 1.3"),
                         sandbox.user("bob").click(incident.card_post_id, third))
    current = await fresh(bot, incident)
    assert current.stages[0].done_count == 3
    text = card_text(card(sandbox, incident))
    assert text.count("✅") == 3  # the card shows the final state, not an older one


async def test_tampered_dialog_choices_are_refused_without_change(sandbox, bot):
    await make_playbook(bot, sandbox)
    incident, _channel = await start_incident(sandbox, bot)
    alice = sandbox.user("alice")
    await alice.click(incident.card_post_id, "Change commander")
    outcome = await alice.submit_dialog({"commander": "../../users/me"})
    assert not outcome.closed and "from the list" in outcome.errors["commander"]
    await alice.click(incident.card_post_id, step_button(card(sandbox, incident), "Assign", "Acknowledge"))
    outcome = await alice.submit_dialog({"assignee": "x" * 300})
    assert not outcome.closed and "from the list" in outcome.errors["assignee"]
    assert [e.kind.value for e in await bot.store.timeline(incident.id)] == ["created", "member_joined"]


async def test_card_keeps_updating_long_after_the_edit_time_limit(sandbox, bot):
    """PostEditTimeLimit is 5 minutes (EDIT_TIME_LIMIT); the card is still right 10 and 20 minutes in."""
    from tests.e2e.conftest import EDIT_TIME_LIMIT

    assert EDIT_TIME_LIMIT == 300
    await make_playbook(bot, sandbox, members=("alice",))
    incident, channel = await start_incident(sandbox, bot)
    cid, alice = channel["id"], sandbox.user("alice")
    first = card(sandbox, incident)

    # Simulated time passes for the bot too: its check of the server-minted trigger ids reads the
    # same clock, as a host synchronised with the server would.
    bot.inbound.triggers.replays.clock = lambda: sandbox.now_ms() / 1000
    sandbox.advance_clock(10 * 60)
    clicked = await alice.click(first["id"], step_button(first, "Check", "Acknowledge the alert"))
    assert clicked.status == 200 and clicked.ephemeral == []

    def shown(text):
        pinned = sandbox.pinned(cid)
        return len(pinned) == 1 and text in card_text(pinned[0]) and pinned[0]

    now = await sandbox.wait_for(lambda: shown("✅ **1.1** Acknowledge the alert · done by @alice"))
    assert (await fresh(bot, incident)).card_post_id == now["id"] != first["id"]
    assert now["message"] == first["message"] and "Checkout errors" in now["message"]
    assert first["id"] not in {p["id"] for p in sandbox.posts(cid)}   # the outdated card is gone
    cards = [p for p in channel_posts(sandbox, cid) if p["props"].get("command_center_card")]
    assert [p["id"] for p in cards] == [now["id"]]

    # Within its own window the new card is edited in place, by command as by button.
    await alice.command(cid, "/incident check 1.2")
    assert shown("✅ **1.2** Assess customer impact")["id"] == now["id"]

    sandbox.advance_clock(10 * 60)
    await alice.command(cid, "/incident stage next")
    later = await sandbox.wait_for(lambda: shown("(2/3) Investigation"))
    assert later["id"] != now["id"] and later["message"] == first["message"]
    assert (await fresh(bot, incident)).card_post_id == later["id"]

    # No edit the bot made ever touched a card's message.
    card_ids = {first["id"], now["id"], later["id"]}
    patches = [json.loads(ex.body) for ex in sandbox.recording
               if ex.method == "PUT" and ex.path.endswith("/patch") and ex.path.split("/")[-2] in card_ids]
    assert patches and all("message" not in body for body in patches)


async def test_a_replacement_card_whose_pin_was_lost_is_pinned_by_the_next_refresh(sandbox, bot):
    """Past the edit limit the card is posted afresh; when pinning it fails (every attempt), the old
    card is already gone and the next refresh pins the recorded card."""
    await make_playbook(bot, sandbox, members=("alice",))
    incident, channel = await start_incident(sandbox, bot)
    cid, alice = channel["id"], sandbox.user("alice")
    first = card(sandbox, incident)
    bot.inbound.triggers.replays.clock = lambda: sandbox.now_ms() / 1000   # see the test above
    sandbox.advance_clock(10 * 60)
    attempts = bot.client.max_attempts
    sandbox.faults.add("error", status=503, path="/api/v4/posts/*/pin", methods="POST", users=["incident"],
                       limit=attempts)
    checked = await alice.command(cid, "/incident check 1.1")
    assert checked.status == 200 and checked.error is None
    await sandbox.wait_for(lambda: sandbox.faults.counts()["error"] == attempts)  # the pin failed for good
    replaced = await fresh(bot, incident)
    assert replaced.card_post_id != first["id"]
    assert first["id"] not in {p["id"] for p in sandbox.posts(cid)}   # the outdated card is gone
    pinned = await sandbox.wait_for(lambda: sandbox.pinned(cid))      # the next refresh pins it
    assert [p["id"] for p in pinned] == [replaced.card_post_id]
    await alice.command(cid, "/incident check 1.2")
    pinned = await sandbox.wait_for(lambda: "✅ **1.2**" in card_text(sandbox.pinned(cid)[0]) and sandbox.pinned(cid))
    assert [p["id"] for p in pinned] == [replaced.card_post_id]

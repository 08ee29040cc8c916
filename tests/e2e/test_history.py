"""Incident history end to end: /incident list (visibility, filters, paging), info figures, export.

The world is the demo seed plus a second team, ``globex`` (alice, bob and the bot), so that "another
team's incidents never appear" can be checked.  Incidents whose start flow is not under test are
made quickly: their channel is created in the sandbox as the bot would, and the incident stored.
"""

from __future__ import annotations

import csv
import io
import re

import aiohttp
import pytest
import yaml

from domain import incidents as ops
from domain.playbooks import StageDraft, StepDraft, new_playbook
from gateway.export import CSV_COLUMNS, CSV_ENCODING
from gateway.messages import with_trigger
from plugins.history import NOT_YOUR_LIST, ListView
from sandbox import Sandbox, SandboxConfig
from services.history import ListFilters
from services.incidents import StartRequest
from tests.e2e.conftest import DEMO_SEED, EDIT_TIME_LIMIT

ROW = re.compile(r"^\| \*\*(.+?)\*\*")
T0 = 1_700_000_000_000
MINUTE = 60_000


def two_team_seed() -> dict:
    seed = yaml.safe_load(DEMO_SEED.read_text())
    seed["teams"].append({"name": "globex", "display_name": "Globex"})
    for user in seed["users"]:
        if user["username"] in ("alice", "bob", "incident"):
            roles = "team_user team_admin" if user["username"] != "bob" else "team_user"
            user["teams"] = [*user["teams"], {"name": "globex", "roles": roles}]
    seed["channels"].append({"team": "globex", "name": "town-square", "display_name": "Town Square", "type": "O",
                             "members": ["alice", "bob", "incident"]})
    return seed


@pytest.fixture
async def sandbox():
    async with Sandbox(two_team_seed(), config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sb:
        yield sb


# Helpers ---------------------------------------------------------------------------------------

async def store_playbook(bot, sandbox, *, title: str, team: str = "acme", public: bool = True,
                         members: tuple[str, ...] = ("alice", "bob", "carol", "dave")):
    member_ids = [sandbox.user_id(name) for name in members]
    playbook = new_playbook(
        team_id=sandbox.team(team)["id"], title=title, created_by=member_ids[0], now=T0,
        create_public_channel=public, member_ids=member_ids,
        stages=[StageDraft(title="Triage", steps=(StepDraft(title="Acknowledge"), StepDraft(title="Assess impact"))),
                StageDraft(title="Resolution", steps=(StepDraft(title="Fix it"),))])
    return await bot.store.create_playbook(playbook)


_counter = iter(range(1_000_000))


async def quick_incident(bot, sandbox, playbook, name: str, creator: str, *, at: int,
                         members: tuple[str, ...] = (), ended: bool = False):
    """An incident as the start flow leaves it (bot-made channel, creator added), minus the posts."""
    world = sandbox.world
    bot_id = sandbox.user_id("incident")
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    channel = world.create_channel(team_id=playbook.team_id, name=f"{slug}-{next(_counter)}", display_name=name,
                                   ctype="O" if playbook.create_public_channel else "P", creator_id=bot_id)
    for username in (creator, *members):
        world.add_member(channel, sandbox.user_id(username), bot_id)
    creator_id = sandbox.user_id(creator)
    incident, events = ops.start_incident(playbook, name=name, channel_id=channel["id"], creator_id=creator_id,
                                          now=at)
    if ended:
        incident, more = ops.end_incident(incident, creator_id, at + 30 * MINUTE)
        events = [*events, *more]
    return await bot.store.create_incident(incident, events)


def incident_service(bot):
    return bot.registry.commands["start"].__self__.service


def history_service(bot):
    return bot.registry.commands["list"].__self__.service


async def list_names(sandbox, username: str, arguments: str = "", channel: str = "town-square") -> list[str]:
    result = await sandbox.user(username).command(channel, f"/incident list {arguments}".strip())
    assert result.status == 200, result.error
    assert len(result.ephemeral) == 1, result.ephemeral
    return names_in(result.ephemeral[0])


def names_in(text: str) -> list[str]:
    return [match.group(1) for line in text.splitlines() if (match := ROW.match(line))]


def last_ephemeral(user, channel: str = "town-square") -> dict:
    return user.ephemeral(channel)[-1]


def current_ephemeral(sandbox, post_id: str) -> dict:
    """An ephemeral post as the user's client shows it now."""
    return sandbox.world.ephemeral[post_id].post


async def dm_lists(sandbox, username: str) -> list[dict]:
    """The list pages the bot has posted in ``username``'s direct messages, oldest first, as they are now."""
    dm = await sandbox.user(username).dm_channel("incident")
    bot_id = sandbox.user_id("incident")
    return [p for p in sandbox.posts(dm) if p["user_id"] == bot_id and p["message"].startswith("#### Incidents")]


def join(sandbox, username: str, channel_id: str) -> None:
    world = sandbox.world
    world.add_member(world.channels[channel_id], sandbox.user_id(username), sandbox.user_id(username))


def leave(sandbox, username: str, channel_id: str) -> None:
    world = sandbox.world
    world.remove_member(world.channels[channel_id], sandbox.user_id(username), sandbox.user_id(username))


@pytest.fixture
async def world(sandbox, bot):
    """Public, private and other-team incidents, one per minute so the order is known."""
    public_pb = await store_playbook(bot, sandbox, title="Outage")
    private_pb = await store_playbook(bot, sandbox, title="Security", public=False)
    globex_pb = await store_playbook(bot, sandbox, title="Globex plan", team="globex", members=("alice", "bob"))
    made = {
        "Public one": await quick_incident(bot, sandbox, public_pb, "Public one", "alice", at=T0),
        "Carol secret": await quick_incident(bot, sandbox, private_pb, "Carol secret", "carol", at=T0 + MINUTE),
        "Bob secret": await quick_incident(bot, sandbox, private_pb, "Bob secret", "bob", at=T0 + 2 * MINUTE),
        "Public two": await quick_incident(bot, sandbox, public_pb, "Public two", "bob", at=T0 + 3 * MINUTE,
                                           ended=True),
        "Globex thing": await quick_incident(bot, sandbox, globex_pb, "Globex thing", "bob", at=T0 + 4 * MINUTE),
    }
    return {"public": public_pb, "private": private_pb, "globex": globex_pb, "incidents": made}


# Visibility --------------------------------------------------------------------------------------

async def test_each_user_sees_public_plus_their_private_incidents_newest_first(sandbox, bot, world):
    assert await list_names(sandbox, "dave") == ["Public two", "Public one"]
    assert await list_names(sandbox, "carol") == ["Public two", "Carol secret", "Public one"]
    assert await list_names(sandbox, "bob") == ["Public two", "Bob secret", "Public one"]
    # A system admin sees every incident of the team, without being in the private channels.
    assert await list_names(sandbox, "alice") == ["Public two", "Bob secret", "Carol secret", "Public one"]


async def test_other_team_incidents_never_appear(sandbox, bot, world):
    in_acme = await list_names(sandbox, "bob")
    in_globex = await list_names(sandbox, "bob", channel="globex/town-square")
    assert "Globex thing" not in in_acme
    assert in_globex == ["Globex thing"]
    assert await list_names(sandbox, "alice", channel="globex/town-square") == ["Globex thing"]
    # Nor can they be opened by name from the other team.
    result = await sandbox.user("bob").command("town-square", '/incident info "Globex thing"')
    assert "No incident called" in result.ephemeral[0]


async def test_member_who_left_no_longer_sees_a_private_incident(sandbox, bot, world):
    secret = world["incidents"]["Carol secret"]
    join(sandbox, "dave", secret.channel_id)  # (the sandbox lets anyone be added; carol would add him)
    assert "Carol secret" in await list_names(sandbox, "dave")
    leave(sandbox, "dave", secret.channel_id)
    assert "Carol secret" not in await list_names(sandbox, "dave")
    result = await sandbox.user("dave").command("town-square", '/incident info "Carol secret"')
    assert "No incident called" in result.ephemeral[0]


async def test_row_shows_link_status_commander_stage_start_and_duration(sandbox, bot, world):
    result = await sandbox.user("dave").command("town-square", "/incident list")
    text = result.ephemeral[0]
    assert "1–2 of 2" in text
    row = next(line for line in text.splitlines() if line.startswith("| **Public two**"))
    channel = sandbox.world.channels[world["incidents"]["Public two"].channel_id]["name"]
    assert f"~{channel}" in row
    assert "| Ended |" in row and "| @bob |" in row and "(1/2) Triage" in row
    assert "2023-11-14 22:16 UTC" in row and "| 30m |" in row


# Filters -----------------------------------------------------------------------------------------

async def test_filters_status_commander_playbook_search(sandbox, bot, world):
    assert await list_names(sandbox, "alice", "ended") == ["Public two"]
    assert await list_names(sandbox, "alice", "ongoing") == ["Bob secret", "Carol secret", "Public one"]
    assert await list_names(sandbox, "alice", "all") == ["Public two", "Bob secret", "Carol secret", "Public one"]
    assert await list_names(sandbox, "alice", "@bob") == ["Public two", "Bob secret"]
    assert await list_names(sandbox, "dave", "@bob") == ["Public two"]
    assert await list_names(sandbox, "alice", "--playbook security") == ["Bob secret", "Carol secret"]
    assert await list_names(sandbox, "carol", '--playbook "Security"') == ["Carol secret"]
    assert await list_names(sandbox, "dave", "--search PUBLIC") == ["Public two", "Public one"]
    assert await list_names(sandbox, "dave", "--search secret") == []
    assert await list_names(sandbox, "alice", "ongoing @bob --search secret") == ["Bob secret"]
    assert await list_names(sandbox, "alice", "--search public two") == ["Public two"]


async def test_filter_mistakes_are_explained(sandbox, bot, world):
    alice = sandbox.user("alice")
    result = await alice.command("town-square", "/incident list --playbook nosuch")
    assert 'No playbook called "nosuch"' in result.ephemeral[0]
    result = await alice.command("town-square", "/incident list @nobody")
    assert "There is no user @" in result.ephemeral[0]
    result = await alice.command("town-square", "/incident list sideways")
    assert "Usage: /incident list" in result.ephemeral[0]
    result = await alice.command("town-square", "/incident list --page zero")
    assert "not a page number" in result.ephemeral[0]
    result = await sandbox.user("dave").command("town-square", "/incident list --search secret")
    assert "No incident you can see matches these filters." in result.ephemeral[0]


# Paging --------------------------------------------------------------------------------------------

async def test_paging_with_buttons_and_page_option(sandbox, bot):
    """The ephemeral reply cannot be updated by its buttons on released servers (404), so its first click
    posts the page in the user's DM with the bot, whose buttons then turn the pages in place."""
    playbook = await store_playbook(bot, sandbox, title="Outage")
    for n in range(32):
        await quick_incident(bot, sandbox, playbook, f"Outage {n:02d}", "alice", at=T0 + n * MINUTE)
    expected = [f"Outage {n:02d}" for n in reversed(range(32))]
    pages = {1: expected[:15], 2: expected[15:30], 3: expected[30:]}
    dave = sandbox.user("dave")
    result = await dave.command("town-square", "/incident list")
    assert names_in(result.ephemeral[0]) == pages[1]
    assert "1–15 of 32 · page 1 of 3" in result.ephemeral[0]
    assert "`/incident list … --page 2`" in result.ephemeral[0]
    post = last_ephemeral(dave)
    assert button_labels(post) == ["Next ▶"]
    clicked = await dave.click(post["id"], "Next ▶")
    assert clicked.status == 200, clicked.error
    assert clicked.ephemeral == ["Page 2 of your incident list is in your direct messages with @incident; "
                                 "its buttons turn the pages there."]
    assert names_in(current_ephemeral(sandbox, post["id"])["message"]) == pages[1]   # the reply stays
    [listed] = await dm_lists(sandbox, "dave")
    assert names_in(listed["message"]) == pages[2]
    assert "16–30 of 32 · page 2 of 3" in listed["message"]
    assert button_labels(listed) == ["◀ Previous", "Next ▶"]
    # In the DM the same post is updated in place, however often the buttons are clicked.
    for label, page in [("Next ▶", 3), ("◀ Previous", 2), ("◀ Previous", 1), ("Next ▶", 2), ("Next ▶", 3),
                        ("◀ Previous", 2), ("Next ▶", 3)]:
        turned = await dave.click(listed["id"], label)
        assert turned.status == 200, turned.error
        assert turned.ephemeral == [] and names_in(turned.post["message"]) == pages[page]
    [listed] = await dm_lists(sandbox, "dave")
    assert "31–32 of 32 · page 3 of 3" in listed["message"]
    assert button_labels(listed) == ["◀ Previous"]          # the last page has no Next
    # The same pages by typing; every typed page has its own buttons.
    result = await dave.command("town-square", "/incident list --page 3")
    assert names_in(result.ephemeral[0]) == pages[3]
    assert "31–32 of 32 · page 3 of 3" in result.ephemeral[0]
    page3 = last_ephemeral(dave)
    assert button_labels(page3) == ["◀ Previous"]
    assert (await dave.click(page3["id"], "◀ Previous")).status == 200
    assert [names_in(p["message"]) for p in await dm_lists(sandbox, "dave")] == [pages[3], pages[2]]
    result = await dave.command("town-square", "/incident list --page 9")
    assert "There is no page 9" in result.ephemeral[0]


async def test_paging_works_the_same_where_ephemeral_posts_are_updated_in_place(sandbox, bot):
    """Newer servers could update the ephemeral reply; the bot never asks them to, so nothing differs."""
    sandbox.config.update_ephemeral_in_place = True
    playbook = await store_playbook(bot, sandbox, title="Outage")
    for n in range(16):
        await quick_incident(bot, sandbox, playbook, f"Outage {n:02d}", "alice", at=T0 + n * MINUTE)
    dave = sandbox.user("dave")
    await dave.command("town-square", "/incident list")
    clicked = await dave.click(last_ephemeral(dave)["id"], "Next ▶")
    assert clicked.status == 200 and "in your direct messages" in clicked.ephemeral[0]
    [listed] = await dm_lists(sandbox, "dave")
    assert names_in(listed["message"]) == ["Outage 00"]
    turned = await dave.click(listed["id"], "◀ Previous")
    assert turned.status == 200 and len(names_in(turned.post["message"])) == 15


async def test_a_list_asked_for_by_direct_message_pages_in_place(sandbox, bot):
    """Typed in the DM, the list is a real post from the start: its buttons update it, nothing new is posted."""
    playbook = await store_playbook(bot, sandbox, title="Outage")
    for n in range(16):
        await quick_incident(bot, sandbox, playbook, f"Outage {n:02d}", "alice", at=T0 + n * MINUTE)
    dave = sandbox.user("dave")
    dm = await dave.dm_channel("incident")
    await dave.post(dm, "list")
    bot_id = sandbox.user_id("incident")
    [listed] = await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm) if p["user_id"] == bot_id])
    turned = await dave.click(listed["id"], "Next ▶")
    assert turned.status == 200 and turned.ephemeral == [] and names_in(turned.post["message"]) == ["Outage 00"]
    assert [p["id"] for p in await dm_lists(sandbox, "dave")] == [listed["id"]]


async def test_only_the_owner_turns_the_pages_of_a_list(sandbox, bot, world):
    """Someone else's click (a system admin can read any DM), a context signed for another user, or a
    replayed click never shows anyone a list that is not theirs."""
    for n in range(15):
        await quick_incident(bot, sandbox, world["public"], f"More {n:02d}", "alice", at=T0 + (10 + n) * MINUTE)
    dave, alice = sandbox.user("dave"), sandbox.user("alice")
    await dave.command("town-square", "/incident list")
    assert (await dave.click(last_ephemeral(dave)["id"], "Next ▶")).status == 200
    [listed] = await dm_lists(sandbox, "dave")
    before = listed["message"]
    assert names_in(before) == ["Public two", "Public one"]   # dave's page 2: none of the private ones
    # alice, a system admin, can see dave's DM and click, but the bot refuses and leaves the post alone.
    refused = await alice.click(listed["id"], "◀ Previous")
    assert refused.status == 200 and refused.ephemeral == [with_trigger(NOT_YOUR_LIST, "incident")]
    assert refused.post is None
    assert sandbox.world.posts[listed["id"]]["message"] == before
    # dave's own click works; replaying exactly that callback is refused by the bot.
    turned = await dave.click(listed["id"], "◀ Previous")
    assert turned.status == 200 and "Bob secret" not in turned.post["message"]
    replay = sandbox.callbacks[-1]
    assert replay.kind == "action"
    async with aiohttp.ClientSession() as http:
        async with http.post(replay.url, data=replay.body, headers=replay.headers) as answer:
            assert answer.status == 401
    assert sandbox.world.posts[listed["id"]]["message"] == turned.post["message"]
    # A button signed for alice's list, delivered to dave: refused, and nothing is posted for him.
    plugin = bot.registry.commands["list"].__self__
    town_square = sandbox.channel("acme", "town-square")["id"]
    alices_view = ListView(alice.id, sandbox.team("acme")["id"], town_square, ListFilters(), on_ephemeral=True)
    [alices] = plugin._pages(alices_view, [plugin._page_button("Next", alices_view, 1)])
    sandbox.world.send_ephemeral(target_user_id=dave.id, channel_id=town_square, message="x",
                                 author_id=sandbox.user_id("incident"), props={"attachments": [alices]})
    forged = await dave.click(last_ephemeral(dave)["id"], "Next")
    assert forged.status == 200 and forged.ephemeral == [with_trigger(NOT_YOUR_LIST, "incident")]
    assert len(await dm_lists(sandbox, "dave")) == 1


async def test_a_stale_page_says_so_and_leads_back_to_the_first(sandbox, bot):
    """Pages computed from an older view: after dave lost access to private incidents, his page-2 list
    shows no page 2 (and none of the hidden incidents) and its button goes back to page 1."""
    public = await store_playbook(bot, sandbox, title="Outage")
    private = await store_playbook(bot, sandbox, title="Security", public=False)
    hidden = [await quick_incident(bot, sandbox, private, f"Private {n:02d}", "carol", at=T0 + n * MINUTE,
                                   members=("dave",)) for n in range(20)]
    for n in range(12):
        await quick_incident(bot, sandbox, public, f"Open {n:02d}", "alice", at=T0 + (20 + n) * MINUTE)
    dave = sandbox.user("dave")
    await dave.command("town-square", "/incident list")
    assert (await dave.click(last_ephemeral(dave)["id"], "Next ▶")).status == 200
    [listed] = await dm_lists(sandbox, "dave")
    assert "page 2 of 3" in listed["message"]
    for incident in hidden:
        leave(sandbox, "dave", incident.channel_id)
    stale = await dave.click(listed["id"], "Next ▶")
    assert stale.status == 200 and "There is no page 3; type /incident list to start again." in stale.post["message"]
    assert button_labels(stale.post) == ["◀ First page"]
    back = await dave.click(listed["id"], "◀ First page")
    assert names_in(back.post["message"]) == [f"Open {n:02d}" for n in reversed(range(12))]
    assert button_labels(back.post) == [] and "1–12 of 12 · page 1 of 1" in back.post["message"]


def button_labels(post: dict) -> list[str]:
    return [action["name"] for attachment in (post.get("props") or {}).get("attachments", [])
            for action in attachment.get("actions", [])]


async def test_paging_through_a_mix_of_public_and_private_incidents(sandbox, bot):
    """More incidents than one store chunk, a third of them hidden from bob: every visible one shows
    up exactly once, in order; the total is a lower bound until the walk has seen everything."""
    public = await store_playbook(bot, sandbox, title="Outage")
    private = await store_playbook(bot, sandbox, title="Security", public=False)
    expected = []
    for n in range(130):
        if n % 3 == 0:
            await quick_incident(bot, sandbox, private, f"Hidden {n:03d}", "carol", at=T0 + n * MINUTE)
        elif n % 3 == 1:
            await quick_incident(bot, sandbox, private, f"Shared {n:03d}", "carol", at=T0 + n * MINUTE,
                                 members=("bob",))
            expected.append(f"Shared {n:03d}")
        else:
            await quick_incident(bot, sandbox, public, f"Open {n:03d}", "alice", at=T0 + n * MINUTE)
            expected.append(f"Open {n:03d}")
    expected.reverse()
    bob = sandbox.user("bob")
    seen: list[str] = []
    texts = []
    page = 1
    while True:
        result = await bob.command("town-square", f"/incident list --page {page}")
        texts.append(result.ephemeral[0])
        seen += names_in(result.ephemeral[0])
        if "Next ▶" not in button_labels(last_ephemeral(bob)):
            break
        page += 1
    assert seen == expected  # no hidden one, no duplicates, newest first
    assert re.search(r"1–15 of \d+\+ · page 1 ·", texts[0])
    assert f"of {len(expected)} · page {page} of {page}" in texts[-1]
    # The button of the next-to-last page leads to the same last page.
    result = await bob.command("town-square", f"/incident list --page {page - 1}")
    post = last_ephemeral(bob)
    assert (await bob.click(post["id"], "Next ▶")).status == 200
    assert names_in((await dm_lists(sandbox, "bob"))[-1]["message"]) == names_in(texts[-1])


async def test_page_button_shows_what_the_clicker_may_see(sandbox, bot, world):
    """A page context cannot widen visibility: the list is computed for the clicking owner on every click."""
    plugin = bot.registry.commands["list"].__self__
    channel_id = sandbox.channel("acme", "town-square")["id"]
    dave = sandbox.user("dave")
    view = ListView(dave.id, sandbox.team("acme")["id"], channel_id, ListFilters(), on_ephemeral=True)
    [attachment] = plugin._pages(view, [plugin._page_button("Next", view, 0)])
    sandbox.world.send_ephemeral(target_user_id=dave.id, channel_id=channel_id, message="x",
                                 author_id=sandbox.user_id("incident"), props={"attachments": [attachment]})
    assert (await dave.click(last_ephemeral(dave)["id"], "Next")).status == 200
    [listed] = await dm_lists(sandbox, "dave")
    assert names_in(listed["message"]) == ["Public two", "Public one"]


# Start flow + list ----------------------------------------------------------------------------------

async def test_incident_started_through_the_dialog_is_listed_with_its_channel(sandbox, bot):
    playbook = await store_playbook(bot, sandbox, title="Incident Response", members=("alice",))
    alice = sandbox.user("alice")
    result = await alice.command("town-square", "/incident start")
    assert result.dialog is not None
    submitted = await alice.submit_dialog({"playbook": playbook.id, "name": "Checkout errors"})
    assert submitted.closed, submitted
    result = await sandbox.user("dave").command("town-square", "/incident list")
    assert names_in(result.ephemeral[0]) == ["Checkout errors"]
    assert "~checkout-errors" in result.ephemeral[0]


# Info --------------------------------------------------------------------------------------------------

def expected_figures(sandbox, channel_id: str) -> tuple[set[str], int]:
    """Members involved and messages by people, computed straight from what the sandbox holds."""
    bots = {uid for uid, user in sandbox.world.users.items() if user.get("is_bot")}
    involved = set(sandbox.channel_members(channel_id))
    people_posts = 0
    for post in sandbox.posts(channel_id):
        props = post.get("props") or {}
        if post["type"].startswith("system_"):
            involved.add(post["user_id"])
            involved.update(v for k, v in props.items() if k in ("addedUserId", "removedUserId"))
        elif props.get("from_webhook") != "true" and post["user_id"] not in bots:
            involved.add(post["user_id"])
            people_posts += 1
    return involved - bots, people_posts


async def test_info_figures_match_the_sandbox(sandbox, bot):
    playbook = await store_playbook(bot, sandbox, title="Outage")
    incidents = incident_service(bot)
    alice_id = sandbox.user_id("alice")
    team_id = sandbox.team("acme")["id"]
    incident = await incidents.start(StartRequest(actor_id=alice_id, team_id=team_id, playbook_id=playbook.id,
                                                  name="Payments down"))
    channel_id = incident.channel_id
    alice, bob, carol = sandbox.user("alice"), sandbox.user("bob"), sandbox.user("carol")
    await bot.client.add_channel_member(channel_id, sandbox.user_id("bob"))   # system_add_to_channel
    join(sandbox, "carol", channel_id)                                        # system_join_channel
    join(sandbox, "dave", channel_id)
    leave(sandbox, "dave", channel_id)                                        # dave left: still involved
    root = await bob.post(channel_id, "I see 500s, checking")
    await alice.post(channel_id, "thanks", root_id=root["id"])
    await carol.post(channel_id, "graph attached", files=[("graph.png", b"\x89PNG....")])
    await bob.post(channel_id, "found it")
    incident = await bot.store.get_incident(incident.id)
    await incidents.check(incident, sandbox.user_id("bob"), (0, 0), True)
    incident = await bot.store.get_incident(incident.id)
    await incidents.check(incident, alice_id, (0, 1), True)

    result = await bob.command(channel_id, "/incident info")
    text = result.ephemeral[0]
    involved, people_posts = expected_figures(sandbox, channel_id)
    assert {sandbox.world.users[u]["username"] for u in involved} == {"alice", "bob", "carol", "dave"}
    assert people_posts == 4
    assert f"Members involved: **{len(involved)}** (@alice, @bob, @carol, @dave)" in text
    assert f"Messages: **{people_posts}** posted by people" in text
    assert "**Ongoing** · commander @alice · playbook Outage" in text
    assert "Active stage: **(1/2) Triage** · steps done **2/3**" in text
    assert re.search(r"✅ 1\.1 Acknowledge — done by @bob, \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)
    assert "⬜ 2.1 Fix it" in text
    timeline = text.split("**Timeline of step completions**")[1]
    assert timeline.index("@bob completed 1.1 Acknowledge") < timeline.index("@alice completed 1.2 Assess impact")


async def test_info_by_name_or_channel_and_refusals(sandbox, bot, world):
    public_two = world["incidents"]["Public two"]
    channel = sandbox.world.channels[public_two.channel_id]["name"]
    dave = sandbox.user("dave")
    by_name = await dave.command("town-square", '/incident info "public TWO"')
    assert by_name.ephemeral[0].startswith("#### ✅ Public two")
    by_channel = await dave.command("town-square", f"/incident info ~{channel}")
    assert by_channel.ephemeral[0].startswith("#### ✅ Public two")
    assert "ended 2023-11-14" in by_channel.ephemeral[0]
    hidden = await dave.command("town-square", '/incident info "Bob secret"')
    assert "No incident called" in hidden.ephemeral[0]
    secret_channel = sandbox.world.channels[world["incidents"]["Bob secret"].channel_id]["name"]
    hidden = await dave.command("town-square", f"/incident info ~{secret_channel}")
    assert "No incident in" in hidden.ephemeral[0]
    nowhere = await dave.command("town-square", "/incident info")
    assert "This channel is not an incident channel" in nowhere.ephemeral[0]
    # A system admin may open a private incident without being in its channel.
    admin = await sandbox.user("alice").command("town-square", '/incident info "Bob secret"')
    assert admin.ephemeral[0].startswith("#### 🚨 Bob secret")


# Export ---------------------------------------------------------------------------------------------

async def exported_rows(sandbox, username: str) -> list[dict]:
    """The rows of the CSV most recently sent to ``username`` by the bot."""
    dm = await sandbox.user(username).dm_channel("incident")
    posts = [p for p in sandbox.posts(dm) if p.get("file_ids")]
    assert posts, "no file was sent"
    data = sandbox.world.files[posts[-1]["file_ids"][0]][1]
    reader = csv.reader(io.StringIO(data.decode(CSV_ENCODING), newline=""))
    header, *rows = list(reader)
    assert tuple(header) == CSV_COLUMNS
    return [dict(zip(CSV_COLUMNS, row)) for row in rows]


async def test_export_sends_every_post_as_csv_by_dm(sandbox, bot):
    playbook = await store_playbook(bot, sandbox, title="Outage")
    incident = await incident_service(bot).start(StartRequest(
        actor_id=sandbox.user_id("alice"), team_id=sandbox.team("acme")["id"], playbook_id=playbook.id,
        name="Export me"))
    channel_id = incident.channel_id
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    await bot.client.add_channel_member(channel_id, bob.id)
    tricky = ['commas, everywhere, "and quotes"', "line one\nline two\r\nline three", "ünïcødé 🚨 中文",
              "=SUM(A1:A2)", "  leading and trailing spaces  "]
    root = await bob.post(channel_id, tricky[0])
    for message in tricky[1:]:
        await alice.post(channel_id, message, root_id=root["id"])
    await bob.post(channel_id, "", files=[("secret.txt", b"attachment bytes must not be exported")])
    leave(sandbox, "bob", channel_id)

    result = await alice.command(channel_id, "/incident export")
    assert "I sent you the CSV of **Export me**" in result.ephemeral[0], result.ephemeral
    rows = await exported_rows(sandbox, "alice")
    posts = sandbox.posts(channel_id)
    assert [row["post id"] for row in rows] == [post["id"] for post in posts]   # every post, oldest first
    assert f"({len(posts)} posts)" in result.ephemeral[0]
    by_id = {row["post id"]: row for row in rows}
    for post in posts:
        row = by_id[post["id"]]
        formula_like = post["message"][:1] in ("=", "+", "-", "@", "\t", "\r")   # e.g. "@bob left the channel."
        assert row["message"] == ("'" if formula_like else "") + post["message"]  # spreadsheet-safe
        assert row["user id"] == post["user_id"]
        assert row["user"] == sandbox.world.users[post["user_id"]]["username"]
        assert row["root id"] == post["root_id"]
        assert row["type"] == (post["type"] or "message")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", row["time"])
    messages = [row["message"] for row in rows]
    for message in tricky:
        assert message.replace("=SUM", "'=SUM") in messages
    types = {row["type"] for row in rows}
    assert {"system_add_to_channel", "system_leave_channel", "message"} <= types
    file_row = next(row for row in rows if row["user"] == "bob" and row["message"] == "")
    assert file_row["type"] == "message"
    data = b"".join(sandbox.world.files[f][1] for p in sandbox.posts(await alice.dm_channel("incident"))
                    for f in p.get("file_ids", []))
    assert b"attachment bytes" not in data


async def test_export_needs_read_access(sandbox, bot, world):
    dave = sandbox.user("dave")
    refused = await dave.command("town-square", '/incident export "Bob secret"')
    assert "No incident called" in refused.ephemeral[0]
    dm = await dave.dm_channel("incident")
    assert not [p for p in sandbox.posts(dm) if p.get("file_ids")]
    # A public incident channel is readable by every team member, so dave may export it.
    allowed = await dave.command("town-square", '/incident export "Public one"')
    assert "I sent you the CSV" in allowed.ephemeral[0]
    rows = await exported_rows(sandbox, "dave")
    channel_id = world["incidents"]["Public one"].channel_id
    assert [row["post id"] for row in rows] == [p["id"] for p in sandbox.posts(channel_id)]


async def test_export_of_a_channel_larger_than_one_page(sandbox, bot, world):
    incident = world["incidents"]["Carol secret"]
    carol_id = sandbox.user_id("carol")
    for n in range(450):
        sandbox.world.create_post(user_id=carol_id, channel_id=incident.channel_id, message=f"note {n}")
    result = await sandbox.user("carol").command("town-square", '/incident export "carol secret"')
    assert "I sent you the CSV" in result.ephemeral[0]
    rows = await exported_rows(sandbox, "carol")
    assert [row["post id"] for row in rows] == [p["id"] for p in sandbox.posts(incident.channel_id)]
    # The creator's "joined the channel" (CreateChannelWithUser posts it), carol's "added", 450 notes.
    assert len(rows) == 452 and rows[0]["type"] == "system_join_channel"


async def test_large_export_answers_at_once_and_arrives_later(sandbox, bot, world):
    """When the export outlasts the reply wait, the user is told it is on its way; the file follows."""
    incident = world["incidents"]["Public one"]
    result = await history_service(bot).export(incident, sandbox.user_id("dave"), wait_s=0)
    assert result.pending
    dm = await sandbox.user("dave").dm_channel("incident")
    await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm) if p.get("file_ids")], timeout=10)
    rows = await exported_rows(sandbox, "dave")
    assert [row["post id"] for row in rows] == [p["id"] for p in sandbox.posts(incident.channel_id)]


async def test_list_and_info_by_direct_message(sandbox, bot, world):
    dave = sandbox.user("dave")
    dm = await dave.dm_channel("incident")
    bot_id = sandbox.user_id("incident")
    await dave.post(dm, "list")
    reply = await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm) if p["user_id"] == bot_id])
    assert names_in(reply[-1]["message"]) == ["Public two", "Public one"]
    await dave.post(dm, 'info "public one"')
    replies = await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm) if p["user_id"] == bot_id][1:])
    assert replies[-1]["message"].startswith("#### 🚨 Public one")

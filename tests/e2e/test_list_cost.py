"""`/incident list` costs the same on a deep page as on the first (issue 15), and never shows a
private incident to someone who is not in its channel: removed members, members just added, and
changes made while the bot's WebSocket was down.

The bot keeps the member lists of incident channels from Mattermost's events (gateway/directory.py
``members_among``); the list walks the store's light references and reads full rows only for the
page shown (services/history.py).  Incidents are built through the store (their channels in the
sandbox, as the start flow leaves them) to keep the tests fast.
"""

from __future__ import annotations

import random

from bot import CommandCenter
from domain import incidents as ops
from domain.playbooks import StageDraft, StepDraft, new_playbook
from tests.e2e.conftest import bot_settings
from tests.e2e.test_history import names_in
from tests.e2e.test_reconnect import FAST, outage, recovered

T0 = 1_700_000_000_000
PER_PAGE = 15


def bot_calls(sandbox) -> list[str]:
    token = f"Bearer {sandbox.token_of('incident')}"
    return [f"{e.method} {e.path}" for e in sandbox.recording if e.headers.get("Authorization") == token]


async def playbooks(app, sandbox):
    team_id, alice = sandbox.team("acme")["id"], sandbox.user_id("alice")
    made = {}
    for public in (True, False):
        playbook = new_playbook(team_id=team_id, title="Open plan" if public else "Closed plan", created_by=alice,
                                now=T0, create_public_channel=public, member_ids=[alice],
                                stages=[StageDraft(title="Triage", steps=(StepDraft(title="Acknowledge"),))])
        made[public] = await app.store.create_playbook(playbook)
    return made


async def build(app, sandbox, kinds: list[str]) -> list[tuple[str, str, str]]:
    """One incident per kind ("public", "shared": private with dave, "hidden": private without him),
    newest last; returns (name, kind, channel id) newest first, as the list orders them."""
    world = sandbox.world
    team_id = sandbox.team("acme")["id"]
    bot_id, alice, dave = sandbox.user_id("incident"), sandbox.user_id("alice"), sandbox.user_id("dave")
    plans = await playbooks(app, sandbox)
    made = []
    async with app.store.transaction():
        for number, kind in enumerate(kinds):
            public = kind == "public"
            channel = world.create_channel(team_id=team_id, name=f"cost-{number}", display_name=f"Cost {number}",
                                           ctype="O" if public else "P", creator_id=bot_id)
            world.add_member(channel, alice, bot_id)
            if kind == "shared":
                world.add_member(channel, dave, bot_id)
            name = f"Incident {number} {kind}"
            incident, events = ops.start_incident(plans[public], name=name, channel_id=channel["id"],
                                                  creator_id=alice, now=T0 + number * 1000)
            await app.store.create_incident(incident, events)
            made.append((name, kind, channel["id"]))
    return made[::-1]


async def listed(sandbox, username: str, arguments: str = "") -> list[str]:
    result = await sandbox.user(username).command("town-square", f"/incident list {arguments}".strip())
    assert result.status == 200 and len(result.ephemeral) == 1, (result.error, result.ephemeral)
    text = result.ephemeral[0]
    assert "@" not in "".join(names_in(text))  # names are shown as typed, nothing turned into a mention
    return names_in(text)


def page_of(made, page: int, *, visible=("public", "shared")) -> list[str]:
    names = [name for name, kind, _ in made if kind in visible]
    return names[(page - 1) * PER_PAGE: page * PER_PAGE]


async def test_a_deep_page_costs_what_the_first_page_costs(sandbox, bot):
    kinds = ["public"] * 300 + ["shared"] * 60 + ["hidden"] * 40
    random.Random(15).shuffle(kinds)
    made = await build(bot, sandbox, kinds)
    deep = 22  # 360 visible to dave: 24 pages
    assert await listed(sandbox, "dave") == page_of(made, 1)
    await bot.directory.preloaded.wait()  # the first list queued the member lists in the background
    for page in (1, deep):
        sandbox.clear_recording()
        shown = await listed(sandbox, "dave", f"--page {page}")
        assert shown == page_of(made, page)
        first = bot_calls(sandbox)
        assert not [call for call in first if "/members" in call and "/teams/" not in call], first
        sandbox.clear_recording()
        assert await listed(sandbox, "dave", f"--page {page}") == shown
        again = bot_calls(sandbox)
        print(f"page {page}: first view {len(first)} REST calls {first}; again {len(again)} {again}")
        assert len(again) <= 2, again
        assert len(first) <= 2, first   # channel names come from one list of the bot's channels
    # and nobody sees more than they may: carol is in none of the private channels
    assert await listed(sandbox, "carol", f"--page {deep}") == page_of(made, deep, visible=("public",))


async def private_incident(app, sandbox, *, with_dave: bool):
    made = await build(app, sandbox, ["public", "shared" if with_dave else "hidden", "public"])
    name, _, channel_id = made[1]
    return name, channel_id


async def test_a_removed_member_no_longer_sees_the_private_incident(sandbox, bot):
    name, channel_id = await private_incident(bot, sandbox, with_dave=True)
    assert name in await listed(sandbox, "dave")
    world, dave = sandbox.world, sandbox.user_id("dave")
    world.remove_member(world.channels[channel_id], dave, sandbox.user_id("alice"))
    await sandbox.wait_for(lambda: dave not in (bot.directory.kept_members(channel_id) or {dave}))
    sandbox.clear_recording()
    assert name not in await listed(sandbox, "dave")
    assert not [call for call in bot_calls(sandbox) if "/channels/" in call and "/members" in call]
    # leaving by oneself is the same
    carol = sandbox.user("carol")
    world.add_member(world.channels[channel_id], carol.id, sandbox.user_id("alice"))
    await sandbox.wait_for(lambda: carol.id in (bot.directory.kept_members(channel_id) or ()))
    assert name in await listed(sandbox, "carol")
    world.remove_member(world.channels[channel_id], carol.id, carol.id)
    await sandbox.wait_for(lambda: carol.id not in (bot.directory.kept_members(channel_id) or {carol.id}))
    assert name not in await listed(sandbox, "carol")


async def test_someone_just_added_sees_the_private_incident_at_once(sandbox, bot):
    name, channel_id = await private_incident(bot, sandbox, with_dave=False)
    assert name not in await listed(sandbox, "dave")
    await sandbox.user("alice").add_member(channel_id, "dave")  # as the web client's "Add members"
    dave = sandbox.user_id("dave")
    await sandbox.wait_for(lambda: dave in (bot.directory.kept_members(channel_id) or ()))
    sandbox.clear_recording()
    assert name in await listed(sandbox, "dave")
    assert not [call for call in bot_calls(sandbox) if "/channels/" in call and "/members" in call]


async def test_a_channel_the_bot_was_removed_from_is_hidden_and_not_asked_again(sandbox, bot):
    name, channel_id = await private_incident(bot, sandbox, with_dave=True)
    assert name in await listed(sandbox, "dave")
    world, bot_id = sandbox.world, sandbox.user_id("incident")
    world.remove_member(world.channels[channel_id], bot_id, sandbox.user_id("alice"))
    await sandbox.wait_for(lambda: not bot.directory.knows_members(channel_id) or
                           bot.directory.kept_members(channel_id) is None)
    # Mattermost answers the bot 403 for the channel's members now: it cannot vouch for anyone there.
    assert name not in await listed(sandbox, "dave")
    sandbox.clear_recording()
    assert name not in await listed(sandbox, "dave")
    # The list asks nothing about the channel (the card's own repair, which reads and writes posts in the
    # background and backs off once refused, is not the list's cost).
    asked = [call for call in bot_calls(sandbox) if channel_id in call and "/posts" not in call]
    assert not asked, bot_calls(sandbox)


async def test_changes_made_while_the_websocket_was_down_are_seen_after_it_reconnects(sandbox, tmp_path):
    app = CommandCenter(bot_settings(sandbox, tmp_path / "data"))
    app.websocket_policy = FAST
    await app.start()
    try:
        await app.wait_connected()
        made = await build(app, sandbox, ["public", "shared", "hidden", "public"])
        by_kind = {kind: (name, channel_id) for name, kind, channel_id in made}
        (removed_from, removed_channel), (added_to, added_channel) = by_kind["shared"], by_kind["hidden"]
        dave = sandbox.user_id("dave")
        assert (removed_from in (names := await listed(sandbox, "dave"))) and added_to not in names
        await app.directory.preloaded.wait()
        assert app.directory.kept_members(removed_channel) is not None
        sandbox.block_websockets("incident")
        sandbox.drop_websockets("incident")
        await outage(app)
        world, alice = sandbox.world, sandbox.user_id("alice")
        world.remove_member(world.channels[removed_channel], dave, alice)  # both events are lost
        world.add_member(world.channels[added_channel], dave, alice)
        # While no events arrive every private channel is asked afresh.
        names = await listed(sandbox, "dave")
        assert removed_from not in names and added_to in names
        sandbox.block_websockets("incident", blocked=False)
        await recovered(app)
        await app.directory.preloaded.wait()  # what was kept before the loss is loaded again
        assert app.directory.kept_members(removed_channel) is not None
        assert dave not in app.directory.kept_members(removed_channel)
        sandbox.clear_recording()
        names = await listed(sandbox, "dave")
        assert removed_from not in names and added_to in names
        calls = bot_calls(sandbox)
        assert not [c for c in calls if removed_channel in c or added_channel in c], calls
        assert app.directory.kept_members(added_channel) is not None
        assert dave in app.directory.kept_members(added_channel)
    finally:
        await app.stop()

"""Events that arrive while the bot is restarting (a deploy, say) are handled after it is back —
once each — because the WebSocket checkpoint is kept in the store across restarts."""

from __future__ import annotations

import asyncio
import dataclasses

from bot import CommandCenter
from tests.e2e.conftest import bot_settings


def bot_posts(sandbox, channel_id: str, text: str) -> list[dict]:
    bot_id = sandbox.user_id("incident")
    return [p for p in sandbox.posts(channel_id) if p["user_id"] == bot_id and text in p["message"]]


async def test_reactions_and_dms_during_a_restart_are_handled_once(sandbox, start_bot):
    bob, carol = sandbox.user("bob"), sandbox.user("carol")
    bob_dm, carol_dm = await bob.dm_channel("incident"), await carol.dm_channel("incident")
    first = await start_bot()
    before = await carol.post("town-square", "Checkout is down")
    await bob.react(before["id"], "rotating_light")
    await sandbox.wait_for(lambda: bot_posts(sandbox, bob_dm, "You reacted"))
    await first.stop()

    # The bot is down: a reaction and a direct message arrive.
    during = await carol.post("town-square", "Search is down too")
    await bob.react(during["id"], "rotating_light")
    await carol.post(carol_dm, "help")

    second = await start_bot()
    await asyncio.wait_for(second.events.caught_up.wait(), 15)
    await sandbox.wait_for(lambda: len(bot_posts(sandbox, bob_dm, "You reacted")) >= 2)
    await sandbox.wait_for(lambda: bot_posts(sandbox, carol_dm, "Send me these words here"))
    await settled(sandbox)
    offers = bot_posts(sandbox, bob_dm, "You reacted")
    assert len(offers) == 2, [p["message"] for p in offers]  # the one from before was not offered again
    assert during["id"] in offers[-1]["message"]
    assert len(bot_posts(sandbox, carol_dm, "Send me these words here")) == 1
    assert second.events.catchups == 1


async def settled(sandbox) -> None:
    """One more round trip through the bot, so anything it was still handling has been handled."""
    dave = sandbox.user("dave")
    dm = await dave.dm_channel("incident")
    count = len(bot_posts(sandbox, dm, "Send me these words here"))
    await dave.post(dm, "help")
    await sandbox.wait_for(lambda: len(bot_posts(sandbox, dm, "Send me these words here")) > count)


async def test_a_long_absence_is_not_replayed(sandbox, start_bot, tmp_path):
    bob, carol = sandbox.user("bob"), sandbox.user("carol")
    bob_dm = await bob.dm_channel("incident")
    first = await start_bot()
    await first.stop()
    during = await carol.post("town-square", "Old news")
    await bob.react(during["id"], "rotating_light")

    second = CommandCenter(bot_settings(sandbox, tmp_path / "data"))
    second.websocket_policy = dataclasses.replace(second.websocket_policy, restart_catchup_max_ms=0)
    await second.start()
    try:
        await second.wait_connected()
        await settled(sandbox)  # live events are handled at once
        assert second.events.catchups == 0
        assert bot_posts(sandbox, bob_dm, "You reacted") == []
    finally:
        await second.stop()


async def test_catch_up_past_a_thousand_changed_posts_in_one_channel(sandbox, start_bot):
    """1,500+ changed rows in town-square while the bot is down (new posts, an edited post's history
    copies, reactions on old and new posts): a since answer holds an arbitrary 1000 of them, so
    catch-up reads the channel whole.  Every reaction trigger and DM command is acted on once."""
    world = sandbox.world
    bob, carol, dave = sandbox.user("bob"), sandbox.user("carol"), sandbox.user("dave")
    bob_dm, carol_dm, dave_dm = (await bob.dm_channel("incident"), await carol.dm_channel("incident"),
                                 await dave.dm_channel("incident"))
    town = sandbox.channel("acme", "town-square")["id"]
    ids = {name: sandbox.user_id(name) for name in ("alice", "bob", "carol")}
    first = await start_bot()
    old = [world.create_post(user_id=ids["carol"], channel_id=town, message=f"old {i}") for i in range(20)]
    await dave.react(old[0]["id"], "rotating_light")  # handled live: must not be offered again
    await sandbox.wait_for(lambda: bot_posts(sandbox, dave_dm, "You reacted"))
    await first.stop()

    new = [world.create_post(user_id=ids["alice"], channel_id=town, message=f"chatter {i}") for i in range(1200)]
    for i in range(400):  # a busy card: each edit leaves a deleted history copy
        world.edit_post(new[0], message=f"chatter 0, take {i}")
    reacted = old + new[::60]
    for post in reacted:
        world.add_reaction(post, ids["bob"], "rotating_light")
    await carol.post(carol_dm, "help")
    changed = [p for p in world.posts.values() if p["channel_id"] == town and p["update_at"] > old[-1]["create_at"]]
    assert len(changed) > 1500

    second = await start_bot()
    await asyncio.wait_for(second.events.caught_up.wait(), 60)
    await sandbox.wait_for(lambda: len(bot_posts(sandbox, bob_dm, "You reacted")) >= len(reacted), timeout=30)
    await sandbox.wait_for(lambda: bot_posts(sandbox, carol_dm, "Send me these words here"))
    await settled(sandbox)
    offers = [p["message"] for p in bot_posts(sandbox, bob_dm, "You reacted")]
    assert sorted(next(p["id"] for p in reacted if p["id"] in offer) for offer in offers) == sorted(
        p["id"] for p in reacted)  # every reacted post offered, each exactly once
    assert len(bot_posts(sandbox, dave_dm, "You reacted")) == 1
    assert len(bot_posts(sandbox, carol_dm, "Send me these words here")) == 1
    assert second.events.catchups == 1
    # Team and channel lists, one since per channel, and town-square read whole in pages of 200
    # (1,220 live posts plus the seed's and system posts): well under 30 calls.
    print(f"catch-up REST calls: {second.events.catchup_rest_calls}")
    assert second.events.catchup_rest_calls < 30


async def test_a_burst_of_events_costs_one_checkpoint_write_and_a_clean_stop_saves_the_last(sandbox, start_bot):
    """The checkpoint is written at most once per interval, however many events arrive; stopping
    writes the newest at once, so a restart after it replays nothing."""
    bob = sandbox.user("bob")
    bob_dm = await bob.dm_channel("incident")
    first = await start_bot()
    first.events.checkpoint_interval_s = 3600.0   # nothing but the first event's write within the test
    saves: list[str] = []
    checkpoint = first.events._checkpoint
    original = checkpoint.save

    async def counted(state: str) -> None:
        saves.append(state)
        await original(state)

    checkpoint.save = counted
    for n in range(10):
        await bob.post(bob_dm, "help")
        await sandbox.wait_for(lambda: len(bot_posts(sandbox, bob_dm, "Send me these words here")) > n)
    assert len(saves) <= 1, len(saves)
    await first.stop()
    assert len(saves) <= 2
    second = await start_bot()
    await asyncio.wait_for(second.events.caught_up.wait(), 15)
    await settled(sandbox)
    assert len(bot_posts(sandbox, bob_dm, "Send me these words here")) == 10   # nothing replayed

"""The WebSocket survives outages: it notices a dead or dropped connection, reports it, reconnects
with backoff and acts — exactly once — on what happened while it was away (protocol.md §4.4)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from bot import CommandCenter
from gateway.events import ConnectionPolicy
from gateway.models import Channel, PostList, Reaction, Team, User
from tests.e2e.conftest import bot_settings

FAST = ConnectionPolicy(connect_timeout_s=2.0, ping_after_s=0.2, dead_after_s=0.6, backoff_base_s=0.05,
                        backoff_cap_s=0.3)
OFFER = "You reacted with :rotating_light:"
HELP = "Send me these words here"


@pytest.fixture
async def fast_bot(sandbox, tmp_path):
    """A started bot whose WebSocket gives up on silence and retries within fractions of a second."""
    app = CommandCenter(bot_settings(sandbox, tmp_path / "data"))
    app.websocket_policy = FAST
    await app.start()
    try:
        await app.wait_connected()
        yield app
    finally:
        await app.stop()


def bot_posts(sandbox, channel_id: str, text: str) -> list[dict]:
    bot_id = sandbox.user_id("incident")
    return [p for p in sandbox.posts(channel_id) if p["user_id"] == bot_id and text in p["message"]]


async def health(app: CommandCenter) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{app.inbound.port}/healthz") as response:
        return response.status, await response.json()


async def outage(app: CommandCenter, wait: float = 5.0) -> None:
    await asyncio.wait_for(app.events.disconnected.wait(), wait)


async def recovered(app: CommandCenter, wait: float = 5.0) -> None:
    await app.wait_connected(wait)
    await asyncio.wait_for(app.events.caught_up.wait(), wait)


async def test_dropped_connection_catches_up_reaction_and_direct_message(sandbox, fast_bot):
    bob, alice = sandbox.user("bob"), sandbox.user("alice")
    before = await alice.post("town-square", "checkout is failing")
    await alice.react(before["id"], "rotating_light")  # handled live, before the outage
    alice_dm = await alice.dm_channel("incident")
    await sandbox.wait_for(lambda: bot_posts(sandbox, alice_dm, OFFER))
    bob_dm = await bob.dm_channel("incident")

    sandbox.block_websockets("incident")
    assert sandbox.drop_websockets("incident") == 1
    await outage(fast_bot)
    status, body = await health(fast_bot)
    assert status == 503 and body["websocket"] == "disconnected"

    await bob.react(before["id"], "rotating_light")
    during = await bob.post("town-square", "payments are down too")
    await alice.react(during["id"], "rotating_light")
    await bob.post(bob_dm, "help")
    assert not bot_posts(sandbox, bob_dm, OFFER) and not bot_posts(sandbox, bob_dm, HELP)
    assert not fast_bot.events.connected.is_set()

    sandbox.block_websockets("incident", False)
    await recovered(fast_bot)
    await sandbox.wait_for(lambda: bot_posts(sandbox, bob_dm, OFFER) and bot_posts(sandbox, bob_dm, HELP)
                           and len(bot_posts(sandbox, alice_dm, OFFER)) == 2)
    status, body = await health(fast_bot)
    assert status == 200 and body["websocket"] == "connected"

    # Another outage makes the next catch-up cover the same events again (the overlap window).
    sandbox.drop_websockets("incident")
    await outage(fast_bot)
    await recovered(fast_bot)
    assert fast_bot.events.catchups == 2
    # A live message after both catch-ups: any duplicate would have been posted before its answer.
    await bob.post(bob_dm, "help")
    await sandbox.wait_for(lambda: len(bot_posts(sandbox, bob_dm, HELP)) == 2)
    assert len(bot_posts(sandbox, bob_dm, OFFER)) == 1
    assert len(bot_posts(sandbox, alice_dm, OFFER)) == 2
    offered = {p["message"].split("](")[1].split(")")[0].rsplit("/", 1)[1] for p in bot_posts(sandbox, alice_dm, OFFER)}
    assert offered == {before["id"], during["id"]}


async def test_silent_connection_is_declared_dead_and_recovered(sandbox, fast_bot):
    carol = sandbox.user("carol")
    post = await carol.post("town-square", "the queue is stuck")
    carol_dm = await carol.dm_channel("incident")

    sandbox.block_websockets("incident")  # the connection stays open but nothing comes through
    await outage(fast_bot)
    status, _ = await health(fast_bot)
    assert status == 503
    await carol.react(post["id"], "rotating_light")
    await carol.post(carol_dm, "help")

    sandbox.block_websockets("incident", False)
    await recovered(fast_bot)
    await sandbox.wait_for(lambda: bot_posts(sandbox, carol_dm, OFFER) and bot_posts(sandbox, carol_dm, HELP))
    await carol.post(carol_dm, "help")
    await sandbox.wait_for(lambda: len(bot_posts(sandbox, carol_dm, HELP)) == 2)
    assert len(bot_posts(sandbox, carol_dm, OFFER)) == 1


async def test_refused_reconnects_back_off_without_losing_events(sandbox, fast_bot):
    dave = sandbox.user("dave")
    dm = await dave.dm_channel("incident")
    sandbox.block_websockets("incident")
    sandbox.drop_websockets("incident")
    await outage(fast_bot)
    bot_id = sandbox.user_id("incident")
    await sandbox.wait_for(lambda: sandbox.ws_refused.get(bot_id, 0) >= 3)
    await dave.post(dm, "help")
    sandbox.block_websockets("incident", False)
    await recovered(fast_bot)
    await sandbox.wait_for(lambda: bot_posts(sandbox, dm, HELP))
    assert fast_bot.events.hellos == 2


async def test_backoff_is_exponential_capped_and_jittered():
    policy = ConnectionPolicy(backoff_base_s=1.0, backoff_cap_s=8.0)
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0), (500, 8.0)):
        delays = {policy.backoff(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(delays) > 1


class FakeClient:
    """The REST calls catch-up makes, answered from fixed data."""

    user_id, username = "bot", "incident"

    def __init__(self, posts: dict[str, dict[str, dict]], reactions: dict[str, list[dict]]):
        self.posts, self.reactions = posts, reactions
        self.reaction_lookups: list[str] = []

    async def my_teams(self):
        return [Team(id="t1"), Team(id="t2")]

    async def my_channels(self, team_id):
        direct = Channel(id="d1", type="D", name="bot__u1")
        if team_id == "t1":
            return [Channel(id="c1", type="O", name="town-square", display_name="Town Square", team_id="t1"), direct]
        return [direct]

    async def channel_posts_since(self, channel_id, since):
        assert since == 1000
        return PostList.model_validate({"order": list(self.posts.get(channel_id, {})),
                                        "posts": self.posts.get(channel_id, {})})

    async def post_reactions(self, post_id):
        self.reaction_lookups.append(post_id)
        return [Reaction.model_validate(r) for r in self.reactions.get(post_id, [])]

    async def get_user(self, user_id):
        return User(id=user_id, username=f"name-{user_id}")


def fake_post(post_id, create_at, *, user="u1", reactions=None, **extra):
    post = {"id": post_id, "create_at": create_at, "update_at": create_at, "delete_at": 0, "user_id": user,
            "message": f"message {post_id}", "type": "", "metadata": {}, "has_reactions": bool(reactions)}
    if reactions is not None:
        post["metadata"]["reactions"] = reactions
    post.update(extra)
    return post


def fake_reaction(post_id, user, create_at, **extra):
    return {"post_id": post_id, "user_id": user, "emoji_name": "rotating_light", "create_at": create_at,
            "delete_at": 0, **extra}


async def test_catch_up_rebuilds_only_what_happened_after_the_point():
    from gateway.catchup import CatchUp

    posts = {
        "c1": {
            "old": fake_post("old", 500, update_at=1500, reactions=[fake_reaction("old", "u1", 600),
                                                                    fake_reaction("old", "u2", 1200)]),
            "new": fake_post("new", 1100),
            "deleted": fake_post("deleted", 1150, delete_at=1300),
            "system": fake_post("system", 1160, type="system_join_channel"),
            "own": fake_post("own", 1170, user="bot"),
            "lookup": fake_post("lookup", 900, update_at=1400, has_reactions=True),
            "removed": fake_post("removed", 900, reactions=[fake_reaction("removed", "u3", 1250, delete_at=1260)]),
        },
        "d1": {"dm": fake_post("dm", 1050, message="help @incident")},
    }
    client = FakeClient(posts, {"lookup": [fake_reaction("lookup", "u4", 1180)]})
    events = await CatchUp(client).missed_events(1000)

    # Posts changed in any way since (edited, deleted, reactions added or taken off) come back as they
    # are now, for handlers to compare (the timeline); joins and leaves from their system posts.
    changed = [(e["at"], json.loads(e["data"]["post"])["id"]) for e in events if e["event"] == "post_changed"]
    assert sorted(changed) == [(1050, "dm"), (1100, "new"), (1150, "deleted"), (1170, "own"), (1400, "lookup"),
                               (1500, "old")]
    assert [(e["event"], e["data"], e["at"]) for e in events if e["event"] == "user_added"] == [
        ("user_added", {"user_id": "u1", "team_id": "t1"}, 1160)]
    events = [e for e in events if e["event"] in ("posted", "reaction_added")]
    summary = [(e["event"], json.loads(e["data"]["post"])["id"] if e["event"] == "posted"
                else json.loads(e["data"]["reaction"])["user_id"]) for e in events]
    assert summary == [("posted", "dm"), ("posted", "new"),
                       ("reaction_added", "u4"), ("reaction_added", "u2")]
    assert client.reaction_lookups == ["lookup"]
    dm, new = events[0], events[1]
    assert dm["data"]["channel_type"] == "D" and dm["broadcast"]["channel_id"] == "d1"
    assert json.loads(dm["data"]["mentions"]) == ["bot"] and dm["data"]["sender_name"] == "@name-u1"
    assert new["data"]["channel_name"] == "town-square" and new["data"]["team_id"] == "t1"
    assert json.loads(events[2]["data"]["reaction"])["channel_id"] == "c1"


class CappedClient(FakeClient):
    """A channel with more changes than a since answer holds: the answer is an arbitrary 1000."""

    def __init__(self, posts, reactions, since_answer):
        super().__init__(posts, reactions)
        self.since_answer = since_answer
        self.pages: list[tuple[str, int]] = []

    async def channel_posts_since(self, channel_id, since):
        if channel_id == "c1":
            return PostList.model_validate({"order": self.since_answer,
                                            "posts": {pid: self.posts["c1"][pid] for pid in self.since_answer}})
        return await super().channel_posts_since(channel_id, since)

    async def channel_posts(self, channel_id, *, before="", page=0, per_page=200):
        self.pages.append((before, page))
        newest_first = sorted(self.posts.get(channel_id, {}).values(), key=lambda p: p["create_at"], reverse=True)
        if before:
            at = self.posts[channel_id][before]["create_at"]
            newest_first = [p for p in newest_first if p["create_at"] < at]
        window = newest_first[page * per_page:(page + 1) * per_page]
        return PostList.model_validate({"order": [p["id"] for p in window], "posts": {p["id"]: p for p in window}})


async def test_catch_up_reads_a_channel_whole_when_since_hits_the_cap():
    """Past the cap the since answer leaves out arbitrary rows; catch-up must still find every new
    post and every reaction added since, each once."""
    from gateway.catchup import CatchUp

    old = {f"old{i}": fake_post(f"old{i}", 100 + i) for i in range(300)}
    old["old7"] = fake_post("old7", 107, update_at=1900, reactions=[fake_reaction("old7", "u9", 1900)])
    new = {f"new{i}": fake_post(f"new{i}", 1001 + i) for i in range(1100)}
    posts = {"c1": {**old, **new}, "d1": {"dm": fake_post("dm", 1050, message="help")}}
    left_out = {"new3", "new600", "old7"}
    since_answer = [pid for pid in new if pid not in left_out][:1000]
    client = CappedClient(posts, {}, since_answer)
    events = await CatchUp(client).missed_events(1000)

    posted = [json.loads(e["data"]["post"])["id"] for e in events if e["event"] == "posted"]
    reactions = [json.loads(e["data"]["reaction"])["post_id"] for e in events if e["event"] == "reaction_added"]
    assert sorted(posted) == sorted([*new, "dm"]) and len(posted) == len(set(posted))
    assert reactions == ["old7"]
    assert len(client.pages) == 8  # 1400 posts of c1 in pages of 200 (+1 re-read each page), nothing more

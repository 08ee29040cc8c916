"""What the sandbox sends for the timeline's events, as the real server does (issue 18): reactions
added and removed go to the post's channel members only (app/reaction.go sendReactionEvent), the
removed one as the bare reaction deleteReaction builds; ``GET /channels/{id}/posts?since=`` answers
every post changed since — a reaction taken off, an edit (with its history copy), a delete — with
the post's current reactions in its metadata."""

from __future__ import annotations

import json

import pytest

from sandbox import Sandbox, SandboxConfig
from tests.e2e.conftest import DEMO_SEED


@pytest.fixture
async def sb():
    async with Sandbox(DEMO_SEED, config=SandboxConfig()) as sandbox:
        yield sandbox


def _recorder(sb: Sandbox, username: str) -> list:
    seen: list = []
    sb.world.subscribe(sb.user_id(username), seen.append)
    return seen


async def test_reaction_events_go_to_the_channel_members_with_the_servers_payloads(sb):
    carol_seen, bob_seen = _recorder(sb, "carol"), _recorder(sb, "bob")  # bob is not in ~leadership
    post = await sb.user("alice").post("leadership", "budget")
    await sb.user("carol").react(post["id"], "pushpin")
    await sb.user("carol").unreact(post["id"], "pushpin")
    added, removed = [e for e in carol_seen if e.event.startswith("reaction_")]
    assert added.broadcast["channel_id"] == removed.broadcast["channel_id"] == post["channel_id"]
    saved = json.loads(added.data["reaction"])
    assert saved["channel_id"] == post["channel_id"] and saved["create_at"] > 0 and saved["delete_at"] == 0
    gone = json.loads(removed.data["reaction"])
    assert {k: gone[k] for k in ("user_id", "post_id", "emoji_name")} == {
        "user_id": sb.user_id("carol"), "post_id": post["id"], "emoji_name": "pushpin"}
    assert gone["create_at"] == 0 and gone["delete_at"] == 0 and gone["channel_id"] == "" and gone["update_at"] > 0
    assert not [e for e in bob_seen if e.event.startswith("reaction_")]


async def test_since_answers_unpinned_edited_and_deleted_posts_as_they_are_now(sb):
    alice, bob = sb.user("alice"), sb.user("bob")
    unpinned = await alice.post("town-square", "one")
    edited = await alice.post("town-square", "two")
    deleted = await alice.post("town-square", "three")
    await bob.react(unpinned["id"], "pushpin")
    await bob.react(unpinned["id"], "eyes")
    since = sb.now_ms()
    sb.advance_clock(1)
    await bob.unreact(unpinned["id"], "pushpin")
    await alice._call("PUT", f"/api/v4/posts/{edited['id']}/patch", json_body={"message": "two, again"})
    await alice._call("DELETE", f"/api/v4/posts/{deleted['id']}")
    channel = sb.channel("acme", "town-square")["id"]
    answer = await bob._call("GET", f"/api/v4/channels/{channel}/posts?since={since}")
    posts = answer["posts"]
    live = {pid: p for pid, p in posts.items() if not p["original_id"]}
    assert set(live) == {unpinned["id"], edited["id"], deleted["id"]}
    assert [r["emoji_name"] for r in live[unpinned["id"]]["metadata"]["reactions"]] == ["eyes"]
    assert live[edited["id"]]["message"] == "two, again" and live[edited["id"]]["edit_at"] > since
    assert live[deleted["id"]]["delete_at"] > since
    copies = [p for p in posts.values() if p["original_id"] == edited["id"]]
    assert len(copies) == 1 and copies[0]["message"] == "two" and copies[0]["delete_at"]

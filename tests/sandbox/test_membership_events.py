"""Membership events go out exactly as Mattermost sends them (server/channels/app/channel.go):
``AddUserToChannel`` sends ``user_added`` once to the channel without the added user and once to
the added user; ``removeUserFromChannel`` sends ``user_removed`` to the channel and to the removed
user. The bot keeps channel membership from these, so their addressing matters."""

from __future__ import annotations

import json

from sandbox import Sandbox
from tests.sandbox.test_websocket import WS, connect


async def frames_until_post(client: WS, message: str) -> list[dict]:
    """Every event up to (and including) the ``posted`` event of ``message``."""
    seen = []
    while True:
        frame = await client.next_event()
        seen.append(frame)
        if frame["event"] == "posted" and json.loads(frame["data"]["post"])["message"] == message:
            return seen


async def test_user_added_once_to_the_channel_and_once_to_the_added_user(http, sb: Sandbox, api) -> None:
    carol, dave = await connect(http, sb, "carol"), await connect(http, sb, "dave")
    lead = sb.channel("acme", "leadership")
    dave_id = sb.user_id("dave")
    await api("POST", f"/api/v4/channels/{lead['id']}/members", as_user="carol", json_body={"user_id": dave_id})
    await api("POST", "/api/v4/posts", as_user="carol", json_body={"channel_id": lead["id"], "message": "marker"})
    to_carol = [f for f in await frames_until_post(carol, "marker") if f["event"] == "user_added"]
    to_dave = [f for f in await frames_until_post(dave, "marker") if f["event"] == "user_added"]
    team_id = sb.team("acme")["id"]
    assert [f["data"] for f in to_carol] == [{"user_id": dave_id, "team_id": team_id}]
    assert to_carol[0]["broadcast"]["channel_id"] == lead["id"]
    assert to_carol[0]["broadcast"]["omit_users"] == {dave_id: True}
    assert [f["data"] for f in to_dave] == [{"user_id": dave_id, "team_id": team_id}]
    assert to_dave[0]["broadcast"]["user_id"] == dave_id and to_dave[0]["broadcast"]["channel_id"] == lead["id"]


async def test_user_removed_to_the_channel_and_to_the_removed_user(http, sb: Sandbox, api) -> None:
    alice, carol = await connect(http, sb, "alice"), await connect(http, sb, "carol")
    lead = sb.channel("acme", "leadership")
    carol_id, alice_id = sb.user_id("carol"), sb.user_id("alice")
    await api("DELETE", f"/api/v4/channels/{lead['id']}/members/{carol_id}", as_user="alice")
    await api("POST", "/api/v4/posts", as_user="alice", json_body={"channel_id": lead["id"], "message": "marker"})
    to_alice = [f for f in await frames_until_post(alice, "marker") if f["event"] == "user_removed"]
    assert [(f["data"], f["broadcast"]["channel_id"]) for f in to_alice] == [
        ({"user_id": carol_id, "remover_id": alice_id}, lead["id"])]
    ev = await carol.next_event("user_removed")
    assert ev["data"] == {"channel_id": lead["id"], "remover_id": alice_id} and ev["broadcast"]["user_id"] == carol_id

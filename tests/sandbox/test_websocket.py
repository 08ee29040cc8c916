"""WebSocket: authentication, hello/seq, pings, and who receives which event."""

from __future__ import annotations

import json

import aiohttp

from sandbox import Sandbox


class WS:
    """A raw WebSocket client that keeps every frame it receives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def next(self, timeout: float = 3.0) -> dict:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        return json.loads(msg.data)

    async def next_event(self, name: str | None = None, timeout: float = 3.0) -> dict:
        while True:
            frame = await self.next(timeout)
            if "event" in frame and (name is None or frame["event"] == name):
                return frame


async def connect(http: aiohttp.ClientSession, sb: Sandbox, user: str) -> WS:
    ws = await http.ws_connect(sb.url.replace("http", "ws") + "/api/v4/websocket")
    await ws.send_str(json.dumps({"seq": 1, "action": "authentication_challenge",
                                  "data": {"token": sb.token_of(user)}}))
    client = WS(ws)
    frames = [await client.next(), await client.next()]
    assert {"status": "OK", "seq_reply": 1} in frames
    hello = next(f for f in frames if f.get("event") == "hello")
    assert hello["seq"] == 0
    return client


async def test_challenge_auth_and_hello(http, sb: Sandbox) -> None:
    client = await connect(http, sb, "bob")
    await client.ws.send_str(json.dumps({"seq": 2, "action": "ping"}))
    pong = await client.next()
    assert pong["seq_reply"] == 2 and pong["data"]["text"] == "pong"
    await client.ws.send_str(json.dumps({"seq": 0, "action": "ping"}))
    bad = await client.next()
    assert bad["status"] == "FAIL" and bad["error"]["id"] == "api.web_socket_router.bad_seq.app_error"
    await client.ws.close()


async def test_bearer_header_auth(http, sb: Sandbox) -> None:
    ws = await http.ws_connect(sb.url + "/api/v4/websocket",
                               headers={"Authorization": "Bearer " + sb.token_of("carol")})
    hello = await WS(ws).next()
    assert hello["event"] == "hello" and hello["seq"] == 0
    assert len(hello["data"]["connection_id"]) == 26
    assert hello["broadcast"]["user_id"] == sb.user_id("carol")
    assert hello["data"]["server_version"].startswith("11.7.15.")
    await ws.close()


async def test_bad_token_closes_socket(http, sb: Sandbox) -> None:
    ws = await http.ws_connect(sb.url + "/api/v4/websocket")
    await ws.send_str(json.dumps({"seq": 1, "action": "authentication_challenge", "data": {"token": "nope"}}))
    msg = await ws.receive(timeout=3)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_unauthenticated_socket_closed_after_timeout(http, sb: Sandbox) -> None:
    ws = await http.ws_connect(sb.url + "/api/v4/websocket")
    msg = await ws.receive(timeout=3)  # config.ws_auth_timeout is 0.3 s in these tests
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_posted_event_shape_and_sequence(http, sb: Sandbox) -> None:
    bob = await connect(http, sb, "bob")
    post = await sb.user("alice").post("town-square", "hello @bob and @carol")
    ev = await bob.next_event("posted")
    assert ev["seq"] == 1
    data = ev["data"]
    assert isinstance(data["post"], str) and json.loads(data["post"])["id"] == post["id"]
    assert set(json.loads(data["mentions"])) == {sb.user_id("bob"), sb.user_id("carol")}
    assert data["channel_type"] == "O" and data["channel_name"] == "town-square"
    assert data["channel_display_name"] == "Town Square" and data["sender_name"] == "@alice"
    assert data["team_id"] == sb.team("acme")["id"]
    assert ev["broadcast"]["channel_id"] == post["channel_id"]
    await sb.user("carol").post("town-square", "no mentions")
    ev2 = await bob.next_event("posted")
    assert ev2["seq"] == 2 and "mentions" not in ev2["data"]


async def test_events_reach_only_channel_members(http, sb: Sandbox) -> None:
    bob = await connect(http, sb, "bob")
    carol = await connect(http, sb, "carol")
    await sb.user("alice").post("leadership", "secret")
    assert json.loads((await carol.next_event("posted"))["data"]["post"])["message"] == "secret"
    await sb.user("alice").post("town-square", "public")
    # bob's next posted event is the public one: the private post never reached him
    assert json.loads((await bob.next_event("posted"))["data"]["post"])["message"] == "public"


async def test_edit_delete_reaction_events(http, sb: Sandbox, api) -> None:
    bob = await connect(http, sb, "bob")
    post = await sb.user("carol").post("town-square", "orig")
    await bob.next_event("posted")
    await api("PUT", f"/api/v4/posts/{post['id']}/patch", as_user="carol", json_body={"message": "new"})
    ev = await bob.next_event()
    assert ev["event"] == "post_edited" and json.loads(ev["data"]["post"])["message"] == "new"
    await sb.user("dave").react(post["id"], "tada")
    ev = await bob.next_event()
    assert ev["event"] == "reaction_added"
    reaction = json.loads(ev["data"]["reaction"])
    assert reaction["emoji_name"] == "tada" and reaction["user_id"] == sb.user_id("dave")
    await sb.user("dave").unreact(post["id"], "tada")
    assert (await bob.next_event())["event"] == "reaction_removed"
    await api("DELETE", f"/api/v4/posts/{post['id']}", as_user="carol")
    ev = await bob.next_event()
    assert ev["event"] == "post_deleted" and json.loads(ev["data"]["post"])["delete_at"] > 0


async def test_member_events_and_system_posts(http, sb: Sandbox, api) -> None:
    dave = await connect(http, sb, "dave")
    carol = await connect(http, sb, "carol")
    lead = sb.channel("acme", "leadership")
    await api("POST", f"/api/v4/channels/{lead['id']}/members", as_user="carol",
              json_body={"user_id": sb.user_id("dave")})
    ev = await carol.next_event("posted")
    assert json.loads(ev["data"]["post"])["type"] == "system_add_to_channel"
    ev = await carol.next_event("user_added")
    assert ev["data"]["user_id"] == sb.user_id("dave") and ev["broadcast"]["channel_id"] == lead["id"]
    assert (await dave.next_event("user_added"))["data"]["user_id"] == sb.user_id("dave")
    await api("DELETE", f"/api/v4/channels/{lead['id']}/members/{sb.user_id('dave')}", as_user="carol")
    ev = await carol.next_event("posted")
    assert json.loads(ev["data"]["post"])["type"] == "system_remove_from_channel"
    ev = await carol.next_event("user_removed")
    assert ev["data"] == {"user_id": sb.user_id("dave"), "remover_id": sb.user_id("carol")}
    ev = await dave.next_event("user_removed")
    assert ev["broadcast"]["user_id"] == sb.user_id("dave") and ev["data"]["channel_id"] == lead["id"]


async def test_channel_created_only_to_creator_and_updated_to_members(http, sb: Sandbox, api) -> None:
    bob = await connect(http, sb, "bob")
    carol = await connect(http, sb, "carol")
    _, _, ch = await api("POST", "/api/v4/channels", as_user="carol", json_body={
        "team_id": sb.team("acme")["id"], "name": "war-room", "display_name": "War room", "type": "O"})
    ev = await carol.next_event("channel_created")
    assert ev["data"] == {"channel_id": ch["id"], "team_id": ch["team_id"]}
    await api("PUT", f"/api/v4/channels/{ch['id']}/patch", as_user="carol", json_body={"purpose": "p"})
    ev = await carol.next_event("channel_updated")
    assert json.loads(ev["data"]["channel"])["purpose"] == "p"
    await sb.user("alice").post("town-square", "marker")
    assert (await bob.next_event())["event"] == "posted"  # bob saw neither channel event


async def test_ephemeral_only_to_target(http, sb: Sandbox, api) -> None:
    bob = await connect(http, sb, "bob")
    carol = await connect(http, sb, "carol")
    ts = sb.channel("acme", "town-square")
    await api("POST", "/api/v4/posts/ephemeral", as_user="alice",
              json_body={"user_id": sb.user_id("carol"), "post": {"channel_id": ts["id"], "message": "only you"}})
    ev = await carol.next_event("ephemeral_message")
    assert json.loads(ev["data"]["post"])["message"] == "only you"
    assert ev["broadcast"]["user_id"] == sb.user_id("carol")
    await sb.user("alice").post("town-square", "marker")
    assert (await bob.next_event())["event"] == "posted"


async def test_typing_omits_typer(http, sb: Sandbox) -> None:
    bob = await connect(http, sb, "bob")
    carol = await connect(http, sb, "carol")
    ts = sb.channel("acme", "town-square")
    await bob.ws.send_str(json.dumps({"seq": 2, "action": "user_typing", "data": {"channel_id": ts["id"]}}))
    ev = await carol.next_event("typing")
    assert ev["data"]["user_id"] == sb.user_id("bob")
    assert ev["broadcast"]["omit_users"] == {sb.user_id("bob"): True}


async def test_sandbox_close_disconnects_clients(http, sb: Sandbox) -> None:
    bob = await connect(http, sb, "bob")
    await sb.close()
    msg = await bob.ws.receive(timeout=3)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_system_posts_have_system_sender(http, sb: Sandbox, api) -> None:
    carol = await connect(http, sb, "carol")
    lead = sb.channel("acme", "leadership")
    await api("POST", f"/api/v4/channels/{lead['id']}/members", as_user="carol",
              json_body={"user_id": sb.user_id("bob")})
    ev = await carol.next_event("posted")
    assert ev["data"]["sender_name"] == "System" and "mentions" not in ev["data"]

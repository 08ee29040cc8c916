"""Seed loading, the Python API surface, recording, the /_sandbox HTTP API and the CLI."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path

import pytest

from sandbox import Exchange, Sandbox, SeedError
from sandbox.ids import is_valid_id

from .conftest import DEMO

ISSUE_SEED = {
    "teams": [{"id": "h6aje7ujgpggjrtik6f3m8fjah", "name": "acme", "display_name": "ACME"}],
    "users": [
        {"id": "3zyjrp1dbtgexqaw3e9yjqpxdr", "username": "alice", "email": "alice@example.com",
         "roles": "system_user system_admin", "token": "7arqwr6kzibc58zomct9ndfk1e", "teams": ["acme"]},
        {"username": "incident", "email": "incident@example.com", "is_bot": True,
         "teams": [{"name": "acme", "roles": "team_user team_admin"}]},
    ],
    "channels": [{"id": "ahzqezf33jny9mpst758dnaahw", "team": "acme", "name": "town-square",
                  "display_name": "Town Square", "type": "O", "members": ["alice", "incident"]}],
}


async def test_issue_seed_shape_loads_with_given_and_generated_ids(tmp_path: Path) -> None:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(ISSUE_SEED))
    async with Sandbox(path) as sb:
        assert sb.user_id("alice") == "3zyjrp1dbtgexqaw3e9yjqpxdr"
        assert sb.token_of("alice") == "7arqwr6kzibc58zomct9ndfk1e"
        assert is_valid_id(sb.user_id("incident")) and is_valid_id(sb.token_of("incident"))
        assert sb.team("acme")["id"] == "h6aje7ujgpggjrtik6f3m8fjah"
        ts = sb.channel("acme", "town-square")
        assert ts["id"] == "ahzqezf33jny9mpst758dnaahw"
        off = sb.channel("acme", "off-topic")  # created automatically, like Mattermost
        assert off is not None and sb.channel_members(off["id"]) == {sb.user_id("alice"), sb.user_id("incident")}
        assert sb.world.team_members[sb.team("acme")["id"]][sb.user_id("incident")]["scheme_admin"] is True
        assert sb.world.users[sb.user_id("incident")]["is_bot"] is True


async def test_town_square_gets_every_team_member() -> None:
    seed = {"teams": [{"name": "t"}], "users": [{"username": "a", "teams": ["t"]}, {"username": "b", "teams": ["t"]}],
            "channels": [{"team": "t", "name": "town-square", "members": ["a"]}]}
    async with Sandbox(seed) as sb:
        assert sb.channel_members(sb.channel("t", "town-square")["id"]) == {sb.user_id("a"), sb.user_id("b")}


@pytest.mark.parametrize("bad", [
    {"users": [{"username": "a", "teams": ["missing"]}]},
    {"teams": [{"name": "t"}], "users": [{"username": "a", "id": "not-an-id"}]},
    {"teams": [{"name": "t"}], "channels": [{"team": "t", "name": "c", "members": ["ghost"]}]},
    {"teams": [{"name": "t"}], "channels": [{"team": "t", "name": "c", "type": "X"}]},
    {"teams": [{"name": "t"}], "bogus": 1},
])
def test_bad_seeds_are_rejected(bad: dict) -> None:
    with pytest.raises(SeedError):
        Sandbox(bad)


async def test_recording_and_wait_for(sb: Sandbox, api) -> None:
    sb.clear_recording()
    ts = sb.channel("acme", "town-square")["id"]
    await api("POST", "/api/v4/posts", as_user="bob", json_body={"channel_id": ts, "message": "rec"})
    ex = sb.recording[-1]
    assert isinstance(ex, Exchange)
    assert (ex.method, ex.path, ex.status) == ("POST", "/api/v4/posts", 201)
    assert json.loads(ex.body)["message"] == "rec" and json.loads(ex.response_body)["message"] == "rec"
    assert ex.headers["Authorization"].startswith("Bearer ")
    assert ex.response_headers["Content-Type"] == "application/json" and ex.url.startswith(sb.url)
    with pytest.raises(TimeoutError, match="never"):
        await sb.wait_for(lambda: "never" == "x", timeout=0.05)

    async def later() -> None:
        await sb.user("carol").post("town-square", "awaited")
    task = asyncio.create_task(later())
    post = await sb.wait_for(lambda: next((p for p in sb.posts(ts) if p["message"] == "awaited"), None))
    assert post["user_id"] == sb.user_id("carol")
    await task


async def test_sim_user_read_channel_and_dm(sb: Sandbox, api) -> None:
    bob = sb.user("bob")
    await bob.post("town-square", "one")
    ts = sb.channel("acme", "town-square")["id"]
    await api("POST", "/api/v4/posts/ephemeral", as_user="alice",
              json_body={"user_id": bob.id, "post": {"channel_id": ts, "message": "eph"}})
    await bob.post("acme/town-square", "two")
    seen = [p["message"] for p in await bob.read_channel("town-square")]
    assert seen == ["one", "eph", "two"]
    assert [p["message"] for p in await bob.read_channel(ts, include_ephemeral=False)] == ["one", "two"]
    dm = await bob.dm_channel("carol")
    post = await bob.post("@carol", "hi carol")
    assert post["channel_id"] == dm
    assert [p["message"] for p in await sb.user("carol").read_channel("@bob")] == ["hi carol"]


async def test_sandbox_http_simulation_api(sb: Sandbox, api) -> None:
    status, _, users = await api("GET", "/_sandbox/users")
    assert status == 200 and {"username": "bob", "id": sb.user_id("bob"), "token": sb.token_of("bob"),
                               "is_bot": False} in users
    status, _, post = await api("POST", "/_sandbox/as/bob/post", json_body={
        "channel": "town-square", "message": "over http",
        "files": [{"filename": "f.txt", "data_base64": base64.b64encode(b"x").decode()}]})
    assert status == 200 and post["message"] == "over http" and len(post["file_ids"]) == 1
    ts = sb.channel("acme", "town-square")["id"]
    _, _, posts = await api("GET", f"/_sandbox/channels/{ts}/posts")
    assert posts[-1]["id"] == post["id"]
    status, _, _ = await api("POST", "/_sandbox/as/carol/react", json_body={"post_id": post["id"], "emoji": "eyes"})
    assert status == 200
    _, _, result = await api("POST", "/_sandbox/as/bob/command", json_body={"channel": "town-square", "text": "/nope"})
    assert result["status"] == 404 and result["error"]["id"] == "api.command.execute_command.not_found.app_error"
    _, _, seen = await api("GET", "/_sandbox/as/bob/channel?channel=town-square")
    assert seen[-1]["message"] == "over http"
    _, _, dialog = await api("GET", "/_sandbox/as/bob/dialog")
    assert dialog == {"dialog": None}
    status, _, err = await api("POST", "/_sandbox/as/nobody/post", json_body={"channel": "x", "message": "y"})
    assert status == 404
    status, _, err = await api("POST", "/_sandbox/as/bob/post", json_body={"channel": "leadership", "message": "y"})
    assert status == 403 and err["id"] == "api.context.permissions.app_error"


async def test_cli_serves_the_demo_world(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox", "--seed", str(DEMO), "--port", "0",
        cwd=str(Path(__file__).resolve().parents[2]), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line.startswith("sandbox ready url=http://127.0.0.1:")
        url = line.strip().split("url=")[1]
        import aiohttp
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/api/v4/users/me",
                             headers={"Authorization": "Bearer xoeg5dzc1pd7zri85ryzeg3gda"}) as r:
                assert r.status == 200 and (await r.json())["username"] == "incident"
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0

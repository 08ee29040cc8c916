"""Every REST exchange the sandbox answers must match the (corrected) Mattermost OpenAPI contract.

One scenario drives every implemented route — successes and the usual errors — as the demo seed's
people and bot would, with a small loopback integration standing in for the bot's HTTP endpoint,
then validates the whole recording.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from sandbox import Sandbox, SandboxConfig
from sandbox.oauth import WEB_PAGES
from tests.contract.checker import ContractChecker

SEED = Path(__file__).resolve().parents[2] / "sandbox" / "seeds" / "demo.yaml"
INCOMING_HOOK_ID = "pojxk7i9e3ydiq9qfwsd6npg5c"  # the demo seed's incoming webhook
UNKNOWN_ID = "zzzzzzzzzzzzzzzzzzzzzzzzzz"


class Integration:
    """The bot side of slash commands, buttons and dialogs, on a loopback port."""

    def __init__(self) -> None:
        self.sb: Sandbox | None = None
        self.bot_token = ""
        self.response_urls: list[str] = []
        self.app = web.Application()
        self.app.router.add_post("/command", self.command)
        self.app.router.add_post("/action", self.action)
        self.app.router.add_post("/dialog", self.dialog)
        self.runner = web.AppRunner(self.app, access_log=None)
        self.url = ""

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        await self.runner.cleanup()

    async def command(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.response_urls.append(str(form["response_url"]))
        text = str(form["text"])
        if text.startswith("dialog"):
            assert self.sb is not None
            async with httpx.AsyncClient(base_url=self.sb.url) as client:
                await client.post(
                    "/api/v4/actions/dialogs/open",
                    headers={"Authorization": f"Bearer {self.bot_token}"},
                    json={
                        "trigger_id": form["trigger_id"],
                        "url": f"{self.url}/dialog",
                        "dialog": {
                            "callback_id": "declare",
                            "title": "Declare incident",
                            "elements": [{"display_name": "Summary", "name": "summary", "type": "text"}],
                            "notify_on_cancel": True,
                            "state": "s1",
                        },
                    },
                )
            return web.json_response({})
        return web.json_response(
            {
                "response_type": "in_channel" if text == "public" else "ephemeral",
                "text": f"ran {text}",
                "attachments": [{"text": "card", "fields": [{"title": "Sev", "value": 2, "short": True}]}],
            }
        )

    async def action(self, request: web.Request) -> web.Response:
        payload = await request.json()
        return web.json_response(
            {"update": {"message": "acknowledged"}, "ephemeral_text": f"ok {payload['context'].get('step')}"}
        )

    async def dialog(self, request: web.Request) -> web.Response:
        payload = await request.json()
        if payload.get("cancelled"):
            return web.Response(status=200)
        if not (payload.get("submission") or {}).get("summary"):
            return web.json_response({"errors": {"summary": "A summary is required"}})
        return web.json_response({})


@pytest.fixture
async def integration():
    server = Integration()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


class Client:
    """Raw REST calls as one seeded user, returning (status, decoded body)."""

    def __init__(self, http: httpx.AsyncClient, token: str | None) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def __call__(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        resp = await self.http.request(method, path, headers={**self.headers, **kw.pop("headers", {})}, **kw)
        try:
            return resp.status_code, resp.json()
        except ValueError:
            return resp.status_code, resp.text


async def _drive_everything(sb: Sandbox, integration: Integration) -> set[str]:
    """Call every implemented route; return the set of "METHOD template" operations expected."""
    integration.sb = sb
    integration.bot_token = sb.token_of("incident")
    team_id = sb.team("acme")["id"]
    alice_id, bob_id, bot_id = sb.user_id("alice"), sb.user_id("bob"), sb.user_id("incident")
    town = sb.channel("acme", "town-square")["id"]
    leadership = sb.channel("acme", "leadership")["id"]

    async with httpx.AsyncClient(base_url=sb.url, timeout=10) as http:
        alice, bob, bot = (Client(http, sb.token_of(n)) for n in ("alice", "bob", "incident"))
        anon = Client(http, None)

        # --- users, teams, system
        assert (await anon("GET", "/api/v4/system/ping"))[0] == 200
        assert (await anon("GET", "/api/v4/system/ping", params={"get_server_status": "true"}))[0] == 200
        assert (await anon("GET", "/api/v4/users/me"))[0] == 401
        assert (await bot("GET", "/api/v4/config/client", params={"format": "old"}))[0] == 200
        assert (await bot("GET", "/api/v4/config/client"))[0] == 501
        assert (await bot("GET", "/api/v4/config/client", params={"format": "new"}))[0] == 400
        status, roles = await bot("POST", "/api/v4/roles/names", json=["system_user", "system_admin", "nope"])
        assert status == 200 and [r["name"] for r in roles] == ["system_user", "system_admin"]
        assert "create_post_ephemeral" in roles[1]["permissions"] and "create_post_ephemeral" not in roles[0]["permissions"]
        assert (await bot("POST", "/api/v4/roles/names", json=[]))[0] == 400
        assert (await bot("POST", "/api/v4/roles/names", json=["Bad Name"]))[0] == 400
        assert (await bot("GET", "/api/v4/users/me"))[0] == 200
        assert (await bot("GET", f"/api/v4/users/{bob_id}"))[0] == 200
        assert (await bot("GET", f"/api/v4/users/{UNKNOWN_ID}"))[0] == 404
        assert (await bot("GET", "/api/v4/users/username/bob"))[0] == 200
        assert (await bot("GET", "/api/v4/users/username/nobody"))[0] == 404
        assert (await bot("POST", "/api/v4/users/ids", json=[alice_id, bob_id, UNKNOWN_ID]))[0] == 200
        assert (await bot("POST", "/api/v4/users/usernames", json=["alice", "carol"]))[0] == 200
        assert (await bot("GET", "/api/v4/users", params={"in_team": team_id, "per_page": 500}))[0] == 200
        assert (await bot("GET", "/api/v4/users", params={"in_channel": town}))[0] == 200
        assert (await bot("GET", "/api/v4/users/me/teams"))[0] == 200
        assert (await bot("GET", "/api/v4/users/me/teams/members"))[0] == 200
        assert (await bot("GET", "/api/v4/teams/name/acme"))[0] == 200
        assert (await bot("GET", "/api/v4/teams/name/nope"))[0] == 404
        assert (await bot("GET", f"/api/v4/teams/{team_id}"))[0] == 200
        assert (await bot("GET", f"/api/v4/teams/{team_id}/members"))[0] == 200
        assert (await bot("GET", f"/api/v4/teams/{team_id}/members/{bob_id}"))[0] == 200
        assert (await bot("GET", f"/api/v4/teams/{team_id}/members/{UNKNOWN_ID}"))[0] == 404
        assert (await bot("GET", f"/api/v4/bots/{bot_id}"))[0] == 200

        # --- channels
        status, channel = await bot(
            "POST", "/api/v4/channels",
            json={"team_id": team_id, "name": "inc-1", "display_name": "INC-1", "type": "O", "purpose": "db"},
        )
        assert status == 201
        cid = channel["id"]
        assert (await bot("POST", "/api/v4/channels",
                          json={"team_id": team_id, "name": "inc-1", "display_name": "dup", "type": "O"}))[0] == 400
        assert (await bot("POST", "/api/v4/channels",
                          json={"team_id": team_id, "name": "Bad Name!", "display_name": "x", "type": "O"}))[0] == 400
        assert (await bot("GET", f"/api/v4/channels/{cid}"))[0] == 200
        status, scratch = await bot("POST", "/api/v4/channels", json={
            "team_id": team_id, "name": "scratch", "display_name": "Scratch", "type": "P"})
        assert status == 201
        assert (await bob("DELETE", f"/api/v4/channels/{scratch['id']}"))[0] in (403, 404)
        assert (await bot("DELETE", f"/api/v4/channels/{scratch['id']}"))[0] == 200
        assert (await bot("DELETE", f"/api/v4/channels/{UNKNOWN_ID}"))[0] == 404
        assert (await bot("GET", f"/api/v4/channels/{UNKNOWN_ID}"))[0] == 404
        assert (await bob("GET", f"/api/v4/channels/{leadership}"))[0] == 403
        assert (await bot("GET", f"/api/v4/teams/{team_id}/channels/name/inc-1"))[0] == 200
        assert (await bot("GET", f"/api/v4/teams/{team_id}/channels/name/missing"))[0] == 404
        assert (await bot("GET", "/api/v4/teams/name/acme/channels/name/town-square"))[0] == 200
        assert (await bot("GET", f"/api/v4/teams/{team_id}/channels"))[0] == 200
        assert (await bot("GET", f"/api/v4/users/{bot_id}/teams/{team_id}/channels"))[0] == 200
        assert (await bot("PUT", f"/api/v4/channels/{cid}/patch", json={"header": "Sev 2"}))[0] == 200
        assert (await bot("POST", "/api/v4/channels/direct", json=[bot_id, bob_id]))[0] == 201
        assert (await bot("POST", f"/api/v4/channels/{cid}/members", json={"user_id": bob_id}))[0] == 201
        assert (await bot("POST", f"/api/v4/channels/{cid}/members", json={"user_id": alice_id}))[0] == 201
        assert (await bot("POST", f"/api/v4/channels/{cid}/members", json={"user_id": UNKNOWN_ID}))[0] >= 400
        assert (await bot("GET", f"/api/v4/channels/{cid}/members", params={"page": 0, "per_page": 60}))[0] == 200
        assert (await bot("GET", f"/api/v4/channels/{cid}/members/{bob_id}"))[0] == 200
        assert (await bot("GET", f"/api/v4/channels/{cid}/members/{sb.user_id('dave')}"))[0] == 404
        assert (await bot("GET", f"/api/v4/channels/{cid}/stats"))[0] == 200
        assert (await bot("GET", f"/api/v4/channels/{cid}/posts"))[0] == 200

        # --- posts, files, reactions
        status, post = await bot("POST", "/api/v4/posts", json={"channel_id": cid, "message": "Database is down"})
        assert status == 201
        pid = post["id"]
        assert (await bot("POST", "/api/v4/posts", json={"channel_id": cid, "message": "reply", "root_id": pid}))[0] == 201
        assert (await bot("POST", "/api/v4/posts", json={"message": "no channel"}))[0] == 400
        assert (await bob("POST", "/api/v4/posts", json={"channel_id": leadership, "message": "x"}))[0] == 403
        status, card = await bot("POST", "/api/v4/posts", json={
            "channel_id": cid, "message": "",
            "props": {"attachments": [{"text": "INC-1", "actions": [
                {"id": "ack", "name": "Acknowledge", "type": "button",
                 "integration": {"url": f"{integration.url}/action", "context": {"step": "ack"}}}]}]},
        })
        assert status == 201
        assert (await alice("POST", "/api/v4/posts/ephemeral",
                            json={"user_id": bob_id, "post": {"channel_id": cid, "message": "only bob"}}))[0] == 201
        assert (await bob("POST", "/api/v4/posts/ephemeral",
                          json={"user_id": alice_id, "post": {"channel_id": cid, "message": "x"}}))[0] == 403
        assert (await bot("GET", f"/api/v4/posts/{pid}"))[0] == 200
        assert (await bot("GET", f"/api/v4/posts/{UNKNOWN_ID}"))[0] == 404
        assert (await bot("PUT", f"/api/v4/posts/{pid}", json={"id": pid, "message": "Database is down (edited)"}))[0] == 200
        assert (await bot("PUT", f"/api/v4/posts/{pid}/patch", json={"props": {"severity": "2"}}))[0] == 200
        assert (await bob("PUT", f"/api/v4/posts/{pid}/patch", json={"message": "hijack"}))[0] == 403
        assert (await bot("POST", f"/api/v4/posts/{pid}/pin"))[0] == 200
        assert (await bot("GET", f"/api/v4/channels/{cid}/pinned"))[0] == 200
        assert (await bot("POST", f"/api/v4/posts/{pid}/unpin"))[0] == 200
        assert (await bot("GET", f"/api/v4/posts/{pid}/thread"))[0] == 200
        assert (await bot("POST", "/api/v4/posts/ids", json=[pid, card["id"]]))[0] == 200
        assert (await bob("POST", "/api/v4/reactions",
                          json={"user_id": bob_id, "post_id": pid, "emoji_name": "eyes"}))[0] == 201
        assert (await bot("GET", f"/api/v4/posts/{pid}/reactions"))[0] == 200
        assert (await bob("DELETE", f"/api/v4/users/{bob_id}/posts/{pid}/reactions/eyes"))[0] == 200
        status, upload = await bot(
            "POST", "/api/v4/files", data={"channel_id": cid}, files={"files": ("timeline.txt", b"12:00 paged\n")}
        )
        assert status == 201
        fid = upload["file_infos"][0]["id"]
        status, _ = await bot(
            "POST", "/api/v4/files", params={"channel_id": cid, "filename": "raw.txt"}, content=b"raw bytes",
            headers={"Content-Type": "application/octet-stream"},
        )
        assert status == 201
        assert (await bob("POST", "/api/v4/files", data={"channel_id": leadership},
                          files={"files": ("x.txt", b"x")}))[0] == 403
        assert (await bot("GET", f"/api/v4/files/{fid}/info"))[0] == 200
        assert (await bot("GET", f"/api/v4/files/{fid}"))[0] == 200
        assert (await bot("GET", f"/api/v4/files/{UNKNOWN_ID}/info"))[0] == 404
        status, with_file = await bot("POST", "/api/v4/posts", json={"channel_id": cid, "message": "log", "file_ids": [fid]})
        assert status == 201
        assert (await bot("GET", f"/api/v4/posts/{with_file['id']}/files/info"))[0] == 200
        assert (await bot("GET", f"/api/v4/channels/{cid}/posts", params={"since": 1}))[0] == 200
        assert (await bot("GET", f"/api/v4/channels/{cid}/posts", params={"before": pid, "per_page": 5}))[0] == 200
        assert (await bot("GET", f"/api/v4/channels/{cid}/stats"))[0] == 200

        # --- the simulated web client's own calls
        carol = sb.user("carol")
        posted = await carol.post(town, "hello with a file", files=[("notes.txt", b"notes")])
        await carol.react(posted["id"], "wave")
        await carol.unreact(posted["id"], "wave")
        await carol.dm_channel("bob")
        assert await carol.read_channel(town)

        # --- slash commands, buttons, dialogs, hooks
        status, cmd = await bot("POST", "/api/v4/commands", json={
            "team_id": team_id, "trigger": "incident", "method": "P", "url": f"{integration.url}/command",
            "auto_complete": True, "auto_complete_desc": "Incidents", "display_name": "Incident",
        })
        assert status == 201
        assert (await bot("POST", "/api/v4/commands", json={
            "team_id": team_id, "trigger": "incident", "method": "P", "url": f"{integration.url}/command"}))[0] == 400
        assert (await bob("POST", "/api/v4/commands", json={
            "team_id": team_id, "trigger": "other", "method": "P", "url": f"{integration.url}/command"}))[0] == 403
        assert (await bot("GET", "/api/v4/commands", params={"team_id": team_id, "custom_only": "true"}))[0] == 200
        assert (await bot("GET", f"/api/v4/commands/{cmd['id']}"))[0] == 200
        assert (await bot("PUT", f"/api/v4/commands/{cmd['id']}", json=dict(cmd, description="Run incidents")))[0] == 200
        assert (await bot("PUT", f"/api/v4/commands/{cmd['id']}/regen_token"))[0] == 200

        assert (await sb.user("bob").command(cid, "/incident status")).status == 200
        assert (await sb.user("bob").command(cid, "/incident public")).status == 200
        assert (await sb.user("bob").command(cid, "/nosuchcommand")).status == 404
        assert (await bob("POST", "/api/v4/commands/execute", json={"channel_id": "bad", "command": "/incident"}))[0] == 400
        assert integration.response_urls
        hook = integration.response_urls[-1].replace(sb.site_url, "")
        assert (await anon("POST", hook, json={"response_type": "in_channel", "text": "later"}))[0] == 200
        assert (await anon("POST", f"/hooks/commands/{UNKNOWN_ID}", json={"text": "x"}))[0] == 404
        assert (await anon("POST", f"/hooks/{INCOMING_HOOK_ID}", json={"text": "CPU at 95%"}))[0] == 200
        assert (await anon("POST", f"/hooks/{INCOMING_HOOK_ID}",
                           data={"payload": json.dumps({"text": "disk full"})}))[0] == 200
        assert (await anon("POST", f"/hooks/{INCOMING_HOOK_ID}", json={"text": ""}))[0] == 400
        assert (await anon("POST", f"/hooks/{UNKNOWN_ID}", json={"text": "x"}))[0] >= 400

        assert (await sb.user("bob").click(card["id"], "ack")).status == 200
        assert (await bob("POST", f"/api/v4/posts/{card['id']}/actions/nosuch", json={}))[0] == 404

        result = await sb.user("bob").command(cid, "/incident dialog")
        assert result.status == 200 and sb.user("bob").dialog is not None
        assert (await sb.user("bob").submit_dialog({"summary": ""})).errors
        assert (await sb.user("bob").submit_dialog({"summary": "db down"})).closed
        await sb.user("bob").command(cid, "/incident dialog")
        assert (await sb.user("bob").cancel_dialog()).closed
        assert (await bot("POST", "/api/v4/actions/dialogs/open", json={
            "trigger_id": "bm90LWEtdHJpZ2dlcg==", "url": f"{integration.url}/dialog",
            "dialog": {"title": "x", "elements": []}}))[0] == 400

        # --- OAuth 2.0 provider (sandbox/oauth.py): apps, then a code through the web pages to a token
        callback = "http://127.0.0.1:9/callback"
        app_body = {"name": "Backstage", "description": "d", "homepage": "http://127.0.0.1:9/",
                    "callback_urls": [callback], "is_trusted": True}
        assert (await bob("POST", "/api/v4/oauth/apps", json=app_body))[0] == 403
        assert (await alice("POST", "/api/v4/oauth/apps", json={**app_body, "callback_urls": []}))[0] == 400
        status, oauth_app = await alice("POST", "/api/v4/oauth/apps", json=app_body)
        assert status == 201 and oauth_app["is_trusted"]
        assert (await alice("GET", "/api/v4/oauth/apps"))[0] == 200
        assert (await alice("GET", f"/api/v4/oauth/apps/{oauth_app['id']}"))[0] == 200
        assert (await alice("GET", f"/api/v4/oauth/apps/{UNKNOWN_ID}"))[0] == 404
        assert (await bob("GET", f"/api/v4/oauth/apps/{oauth_app['id']}/info"))[1]["client_secret"] == ""
        login = await http.post("/login", data={"login_id": "alice", "password": "alice-password"})
        assert login.status_code == 302
        authorized = await http.get("/oauth/authorize", params={
            "response_type": "code", "client_id": oauth_app["id"], "redirect_uri": callback, "state": "s"})
        code = dict(httpx.URL(authorized.headers["location"]).params)["code"]
        http.cookies.clear()
        form = {"grant_type": "authorization_code", "client_id": oauth_app["id"], "redirect_uri": callback,
                "client_secret": oauth_app["client_secret"], "code": code}
        assert (await anon("POST", "/oauth/access_token", data={**form, "grant_type": "password"}))[0] == 400
        status, access = await anon("POST", "/oauth/access_token", data=form)
        assert status == 200 and access["token_type"] == "bearer"
        assert (await anon("POST", "/oauth/access_token", data=form))[0] == 400  # the code is spent
        assert (await Client(http, access["access_token"])("GET", "/api/v4/users/me"))[1]["id"] == alice_id

        # --- deletions last
        assert (await bot("DELETE", f"/api/v4/channels/{cid}/members/{alice_id}"))[0] == 200
        assert (await bot("DELETE", f"/api/v4/channels/{town}/members/{bob_id}"))[0] == 400
        assert (await bot("DELETE", f"/api/v4/posts/{pid}"))[0] == 200
        assert (await bot("DELETE", f"/api/v4/commands/{cmd['id']}"))[0] == 200
        assert (await bot("DELETE", f"/api/v4/commands/{cmd['id']}"))[0] == 404

    return set(EXPECTED_OPERATIONS)


EXPECTED_OPERATIONS = [
    "get /api/v4/system/ping", "get /api/v4/config/client", "post /api/v4/roles/names", "get /api/v4/users/{user_id}", "get /api/v4/users/username/{username}",
    "post /api/v4/users/ids", "post /api/v4/users/usernames", "get /api/v4/users",
    "get /api/v4/users/{user_id}/teams", "get /api/v4/users/{user_id}/teams/members",
    "get /api/v4/teams/name/{name}", "get /api/v4/teams/{team_id}", "get /api/v4/teams/{team_id}/members",
    "get /api/v4/teams/{team_id}/members/{user_id}", "get /api/v4/bots/{bot_user_id}",
    "post /api/v4/channels", "get /api/v4/channels/{channel_id}",
    "get /api/v4/teams/{team_id}/channels/name/{channel_name}",
    "get /api/v4/teams/name/{team_name}/channels/name/{channel_name}", "get /api/v4/teams/{team_id}/channels",
    "get /api/v4/users/{user_id}/teams/{team_id}/channels", "put /api/v4/channels/{channel_id}/patch",
    "post /api/v4/channels/direct", "post /api/v4/channels/{channel_id}/members",
    "get /api/v4/channels/{channel_id}/members", "get /api/v4/channels/{channel_id}/members/{user_id}",
    "delete /api/v4/channels/{channel_id}/members/{user_id}", "get /api/v4/channels/{channel_id}/stats",
    "get /api/v4/channels/{channel_id}/pinned", "get /api/v4/channels/{channel_id}/posts",
    "post /api/v4/posts", "post /api/v4/posts/ephemeral", "get /api/v4/posts/{post_id}",
    "put /api/v4/posts/{post_id}", "put /api/v4/posts/{post_id}/patch", "delete /api/v4/posts/{post_id}",
    "post /api/v4/posts/{post_id}/pin", "post /api/v4/posts/{post_id}/unpin", "get /api/v4/posts/{post_id}/thread",
    "post /api/v4/posts/ids", "get /api/v4/posts/{post_id}/files/info", "post /api/v4/reactions",
    "get /api/v4/posts/{post_id}/reactions",
    "delete /api/v4/users/{user_id}/posts/{post_id}/reactions/{emoji_name}",
    "post /api/v4/files", "get /api/v4/files/{file_id}", "get /api/v4/files/{file_id}/info",
    "post /api/v4/commands", "get /api/v4/commands", "get /api/v4/commands/{command_id}",
    "put /api/v4/commands/{command_id}", "delete /api/v4/commands/{command_id}",
    "put /api/v4/commands/{command_id}/regen_token", "post /api/v4/commands/execute",
    "post /api/v4/posts/{post_id}/actions/{action_id}", "post /api/v4/actions/dialogs/open",
    "post /api/v4/actions/dialogs/submit", "post /hooks/commands/{hook_id}", "post /hooks/{hook_id}",
    "delete /api/v4/channels/{channel_id}",
    "post /api/v4/oauth/apps", "get /api/v4/oauth/apps", "get /api/v4/oauth/apps/{app_id}",
    "get /api/v4/oauth/apps/{app_id}/info", "post /oauth/access_token",
]


async def test_every_sandbox_exchange_matches_the_contract(
    openapi_contract: ContractChecker, integration: Integration
) -> None:
    async with Sandbox(SEED, config=SandboxConfig(record=True)) as sb:
        expected = await _drive_everything(sb, integration)
        recording = list(sb.recording)

    covered = set()
    for exchange in recording:
        route = openapi_contract.routes.resolve(exchange.method.lower(), exchange.path)
        if not isinstance(route, str):
            covered.add(f"{exchange.method.lower()} {route.template}")
    assert expected <= covered, f"not exercised: {sorted(expected - covered)}"
    # And nothing the sandbox serves escapes the contract: every registered REST route was driven.
    unexercised = []
    for route in sb.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method in ("HEAD", "*") or path.startswith("/_sandbox") or path.startswith("/api/v4/websocket") \
                or path in WEB_PAGES:  # the web app's HTML pages: tests/sandbox/test_sandbox_oauth.py
            continue
        if not any(ex.method == route.method and route.resource._match(ex.path) is not None for ex in recording):
            unexercised.append(f"{route.method} {path}")
    assert not unexercised, f"sandbox routes no contract exchange exercised: {unexercised}"
    assert any(ex.status >= 400 for ex in recording) and any(ex.status == 201 for ex in recording)

    judged = openapi_contract.assert_exchanges_valid(recording)
    assert judged == len(recording) > 100

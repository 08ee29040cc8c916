"""mattermostautodriver's Driver and AsyncDriver against every implemented route."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from aiohttp import web
from mattermostautodriver import AsyncDriver, Driver
from mattermostautodriver.exceptions import (
    InvalidOrMissingParameters,
    NoAccessTokenProvided,
    NotEnoughPermissions,
    ResourceNotFound,
)

from sandbox import Sandbox

from .conftest import Integration, Received, json_reply


def options(sb: Sandbox, user: str) -> dict:
    return {"url": sb.host, "port": sb.port, "scheme": "http", "token": sb.token_of(user), "verify": False}


class Caller:
    """Calls driver endpoint methods the same way for Driver (in a thread) and AsyncDriver."""

    def __init__(self, kind: str, sb: Sandbox) -> None:
        self.kind = kind
        self.sb = sb
        self.drivers: dict[str, Any] = {}

    async def login(self, user: str) -> Any:
        if self.kind == "sync":
            drv = Driver(options(self.sb, user))
            await asyncio.to_thread(drv.login)
        else:
            drv = AsyncDriver(options(self.sb, user))
            await drv.login()
        self.drivers[user] = drv
        return drv

    async def __call__(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        if self.kind == "async":
            result = fn(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def close(self) -> None:
        for drv in self.drivers.values():
            if self.kind == "sync":
                drv.client.client.close()
            else:
                await drv.client.client.aclose()


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_every_route_through_the_driver(kind: str, sb: Sandbox, api, integration: Integration) -> None:
    call = Caller(kind, sb)
    try:
        await _scenario(call, sb, api, integration)
    finally:
        await call.close()


async def _scenario(call: Caller, sb: Sandbox, api, integration: Integration) -> None:
    bot = await call.login("incident")
    admin = await call.login("alice")
    bob = await call.login("bob")
    team = sb.team("acme")
    ts = sb.channel("acme", "town-square")
    bot_id, bob_id = sb.user_id("incident"), sb.user_id("bob")

    # system, users, teams, bots
    assert (await call(bot.system.get_ping))["status"] == "OK"
    assert (await call(bot.users.get_user, "me"))["id"] == bot_id
    assert (await call(bot.users.get_user, bob_id))["username"] == "bob"
    assert (await call(bot.users.get_user_by_username, "carol"))["id"] == sb.user_id("carol")
    assert len(await call(bot.users.get_users_by_ids, [bob_id, bot_id])) == 2
    assert [u["username"] for u in await call(bot.users.get_users_by_usernames, ["dave"])] == ["dave"]
    assert len(await call(bot.users.get_users, params={"in_team": team["id"], "per_page": 200})) == 5
    assert len(await call(bot.users.get_users, params={"in_channel": ts["id"]})) == 5
    assert (await call(bot.teams.get_team, team["id"]))["name"] == "acme"
    assert (await call(bot.teams.get_team_by_name, "acme"))["id"] == team["id"]
    assert len(await call(bot.teams.get_team_members, team["id"])) == 5
    assert [t["id"] for t in await call(bot.teams.get_teams_for_user, "me")] == [team["id"]]
    assert (await call(bot.teams.get_team_member, team["id"], bot_id))["scheme_admin"] is True
    assert (await call(bot.bots.get_bot, bot_id))["username"] == "incident"

    # channels
    pub = await call(bot.channels.create_channel, {"team_id": team["id"], "name": f"pub-{call.kind}",
                                                   "display_name": "Pub", "type": "O"})
    priv = await call(bot.channels.create_channel, {"team_id": team["id"], "name": f"priv-{call.kind}",
                                                    "display_name": "Priv", "type": "P"})
    dm = await call(bot.channels.create_direct_channel, [bot_id, bob_id])
    assert dm["type"] == "D"
    assert (await call(bot.channels.get_channel, pub["id"]))["name"] == pub["name"]
    assert (await call(bot.channels.get_channel_by_name, team["id"], priv["name"]))["id"] == priv["id"]
    assert (await call(bot.channels.get_channel_by_name_for_team_name, "acme", "town-square"))["id"] == ts["id"]
    assert (await call(bot.channels.patch_channel, priv["id"], {"header": "h"}))["header"] == "h"
    assert (await call(bot.channels.add_channel_member, priv["id"], {"user_id": bob_id}))["user_id"] == bob_id
    assert len(await call(bot.channels.get_channel_members, priv["id"])) == 2
    assert (await call(bot.channels.get_channel_member, priv["id"], bob_id))["roles"] == "channel_user"
    assert (await call(bot.channels.remove_user_from_channel, priv["id"], bob_id)) == {"status": "OK"}
    assert (await call(bot.channels.get_channel_stats, priv["id"]))["member_count"] == 1
    names = {c["name"] for c in await call(bot.channels.get_channels_for_team_for_user, bot_id, team["id"])}
    assert {"town-square", pub["name"], priv["name"], dm["name"]} <= names
    assert pub["name"] in {c["name"] for c in await call(bot.channels.get_public_channels_for_team, team["id"])}

    # posts
    post = await call(bot.posts.create_post, {"channel_id": ts["id"], "message": "hello"})
    assert (await call(bob.posts.get_post, post["id"]))["message"] == "hello"
    assert (await call(bot.posts.patch_post, post["id"], {"message": "patched"}))["message"] == "patched"
    assert (await call(bot.posts.update_post, post["id"], {"id": post["id"], "message": "updated"}))["message"] == "updated"
    reply = await call(bob.posts.create_post, {"channel_id": ts["id"], "message": "re", "root_id": post["id"]})
    assert set((await call(bot.posts.get_post_thread, post["id"]))["order"]) == {post["id"], reply["id"]}
    assert (await call(bot.posts.pin_post, post["id"])) == {"status": "OK"}
    assert list((await call(bot.channels.get_pinned_posts, ts["id"]))["posts"]) == [post["id"]]
    assert (await call(bot.posts.unpin_post, post["id"])) == {"status": "OK"}
    plist = await call(bot.posts.get_posts_for_channel, ts["id"], params={"per_page": 1})
    assert plist["order"] == [reply["id"]]
    since = await call(bot.posts.get_posts_for_channel, ts["id"], params={"since": post["create_at"] - 1})
    assert post["id"] in since["order"]
    assert [p["id"] for p in await call(bot.posts.get_posts_by_ids, [post["id"]])] == [post["id"]]
    eph = await call(admin.posts.create_post_ephemeral, {"user_id": bob_id,
                                                         "post": {"channel_id": ts["id"], "message": "psst"}})
    assert eph["type"] == "system_ephemeral"

    # reactions
    assert (await call(bob.reactions.save_reaction, {"user_id": bob_id, "post_id": post["id"],
                                                     "emoji_name": "+1"}))["emoji_name"] == "+1"
    assert len(await call(bot.reactions.get_reactions, post["id"])) == 1
    assert (await call(bob.reactions.delete_reaction, bob_id, post["id"], "+1")) == {"status": "OK"}

    # files
    up = await call(bot.files.upload_file, files={"files": ("log.txt", b"log line")},
                    data={"channel_id": ts["id"]})
    fid = up["file_infos"][0]["id"]
    with_file = await call(bot.posts.create_post, {"channel_id": ts["id"], "message": "f", "file_ids": [fid]})
    raw = await call(bob.files.get_file, fid)
    assert isinstance(raw, httpx.Response) and raw.content == b"log line"
    assert (await call(bob.files.get_file_info, fid))["name"] == "log.txt"
    assert [f["id"] for f in await call(bob.posts.get_file_infos_for_post, with_file["id"])] == [fid]

    # commands, dialogs, actions
    async def command(req: Received) -> web.Response:
        await call(bot.integration_actions.open_interactive_dialog, {
            "trigger_id": req.form()["trigger_id"][0], "url": integration.url("/submit"),
            "dialog": {"callback_id": "c", "title": "T", "elements": []}})
        return json_reply({"response_type": "in_channel", "text": "ran"})

    async def submit(_: Received) -> web.Response:
        return json_reply({"errors": {"x": "bad"}})

    async def act(_: Received) -> web.Response:
        return json_reply({"ephemeral_text": "clicked"})
    integration.routes.update({f"/cmd-{call.kind}": command, "/submit": submit, "/act": act})
    cmd = await call(bot.commands.create_command, {"team_id": team["id"], "trigger": f"inc{call.kind}",
                                                   "url": integration.url(f"/cmd-{call.kind}"), "method": "P"})
    assert cmd["id"] in [c["id"] for c in await call(bot.commands.list_commands,
                                                      params={"team_id": team["id"], "custom_only": True})]
    assert (await call(bot.commands.get_command_by_id, cmd["id"]))["token"] == cmd["token"]
    assert (await call(bot.commands.update_command, cmd["id"], dict(cmd, description="d")))["description"] == "d"
    assert len((await call(bot.commands.regen_command_token, cmd["id"]))["token"]) == 26
    resp = await call(bob.commands.execute_command, {"channel_id": ts["id"], "command": f"/inc{call.kind} go"})
    assert resp["text"] == "ran" and sb.user("bob").dialog is not None
    sub = await call(bob.integration_actions.submit_interactive_dialog, {
        "url": integration.url("/submit"), "callback_id": "c", "state": "", "channel_id": ts["id"],
        "team_id": team["id"], "submission": {"x": ""}, "cancelled": False})
    assert sub == {"errors": {"x": "bad"}}
    card = await call(bot.posts.create_post, {"channel_id": ts["id"], "message": "", "props": {"attachments": [
        {"actions": [{"id": "go", "name": "Go", "integration": {"url": integration.url("/act")}}]}]}})
    clicked = await call(bob.posts.do_post_action, card["id"], "go")
    assert clicked["status"] == "OK" and clicked["trigger_id"]
    assert (await call(bot.commands.delete_command, cmd["id"])) == {"status": "OK"}
    assert (await call(bot.posts.delete_post, post["id"])) == {"status": "OK"}

    # errors map to the driver's exception types
    with pytest.raises(ResourceNotFound):
        await call(bot.posts.get_post, post["id"])
    with pytest.raises(NotEnoughPermissions):
        await call(bob.commands.create_command, {"team_id": team["id"], "trigger": "x",
                                                 "url": "http://127.0.0.1:1", "method": "P"})
    with pytest.raises(InvalidOrMissingParameters):
        await call(bot.users.get_user, "short")
    bad = Driver(dict(options(sb, "bob"), token="x" * 26)) if call.kind == "sync" else None
    if bad is not None:
        with pytest.raises(NoAccessTokenProvided):
            await asyncio.to_thread(bad.login)
        bad.client.client.close()
    if call.kind == "sync":
        hook = await call(bot.client.call_webhook, "pojxk7i9e3ydiq9qfwsd6npg5c", {"text": "via hook"})
        assert hook.status_code == 200 and hook.text == "ok"

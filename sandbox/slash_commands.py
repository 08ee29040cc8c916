"""Slash commands: the command CRUD routes, executing a command, and its delayed responses.

Mirrors api4/command.go (``createCommand``, ``listCommands``, ``getCommand``, ``updateCommand``,
``deleteCommand``, ``regenCommandToken``, ``executeCommand``), app/command.go ``ExecuteCommand`` /
``HandleCommandResponse`` (the form fields sent to the integration, its CommandResponse turned
into posts), model/command_response.go ``CommandResponseFromHTTPBody`` and web/command_webhook.go
(``POST /hooks/commands/{id}``, the ``response_url``) — protocol.md §1.
"""

from __future__ import annotations

import copy
import json
import re
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from aiohttp import web

from . import errors
from .builtin_commands import BUILT_IN_COMMANDS, BUILTIN_TRIGGERS
from .errors import AppError
from .httputil import ID, caller, flag, json_response, path_id, read_json, status_ok
from .ids import is_valid_id, new_id, now_ms
from .keys import SB_KEY
from .outbound import call_integration, process_attachments, slack_to_markdown
from .state import Hook
from .trigger_ids import issue_trigger_id

if TYPE_CHECKING:  # the Sandbox is handed in; app.py imports this module
    from .app import Sandbox

COMMAND_FIELDS = ("trigger", "method", "username", "icon_url", "auto_complete", "auto_complete_desc",
                  "auto_complete_hint", "display_name", "description", "url")


def _validate_command(cmd: dict) -> None:
    trigger = cmd.get("trigger")
    if (not isinstance(trigger, str) or not trigger or len(trigger) > 128
            or trigger.startswith("/") or any(c.isspace() for c in trigger)):
        raise AppError(400, "model.command.is_valid.trigger.app_error", "Invalid trigger.")
    url = cmd.get("url")
    if not isinstance(url, str) or not url or len(url) > 1024:
        raise AppError(400, "model.command.is_valid.url.app_error", "Invalid URL.")
    if not re.match(r"^https?://", url):
        raise AppError(400, "model.command.is_valid.url_http.app_error",
                       "Invalid URL. Must be a valid URL and start with http:// or https://.")
    if cmd.get("method") not in ("P", "G"):
        raise AppError(400, "model.command.is_valid.method.app_error", "Invalid Method.")
    if len(str(cmd.get("display_name", ""))) > 64:
        raise AppError(400, "model.command.is_valid.display_name.app_error", "Invalid title.")
    if len(str(cmd.get("description", ""))) > 128:
        raise AppError(400, "model.command.is_valid.description.app_error", "Invalid description.")


def _check_trigger_free(world, team_id: str, trigger: str, except_id: str = "") -> None:
    if trigger in BUILTIN_TRIGGERS or any(
            c["team_id"] == team_id and c["trigger"] == trigger and not c["delete_at"] and c["id"] != except_id
            for c in world.commands.values()):
        raise AppError(400, "api.command.duplicate_trigger.app_error",
                       "This trigger word is already in use. Please choose another word.")


def command_missing() -> AppError:
    """api4/context.go ``SetCommandNotFoundError``."""
    return AppError(404, "store.sql_command.save.get.app_error", "Unable to get the command.")


async def create_command(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    body = await read_json(request, "command")
    team_id = body.get("team_id", "")
    if not is_valid_id(team_id):
        raise AppError(400, "model.command.is_valid.team_id.app_error", "Invalid team ID.")
    # api4/command.go createCommand: manage_slash_commands in the team (team admins, system admins).
    if not world.has_team_permission(team_id, me["id"], "manage_slash_commands"):
        raise errors.permissions("manage_slash_commands")
    if team_id not in world.teams:
        raise errors.team_missing()
    t = now_ms()
    cmd = {
        "id": new_id(), "token": new_id(), "create_at": t, "update_at": t, "delete_at": 0,
        "creator_id": me["id"], "team_id": team_id, "trigger": "", "method": "P", "username": "",
        "icon_url": "", "auto_complete": False, "auto_complete_desc": "", "auto_complete_hint": "",
        "display_name": "", "description": "", "url": "", "plugin_id": "",
    }
    for key in COMMAND_FIELDS:
        if key in body and body[key] is not None:
            cmd[key] = body[key]
    if isinstance(cmd["trigger"], str):
        cmd["trigger"] = cmd["trigger"].strip().lower()
    _validate_command(cmd)
    _check_trigger_free(world, team_id, cmd["trigger"])
    world.commands[cmd["id"]] = cmd
    world.touch()
    return json_response(cmd, status=201)


def _manageable_command(request: web.Request) -> dict:
    world = request.app[SB_KEY].world
    me = caller(request)
    cmd = world.commands.get(path_id(request, "command_id"))
    if cmd is None or cmd["delete_at"]:
        raise command_missing()
    # api4/command.go getCommand / updateCommand / deleteCommand / regenCommandToken: without
    # manage_slash_commands in the command's team the command is reported missing (404), so its
    # existence does not leak. (Every default role with it also has manage_others_slash_commands.)
    if not world.has_team_permission(cmd["team_id"], me["id"], "manage_slash_commands"):
        raise command_missing()
    return cmd


async def list_commands(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    team_id = request.query.get("team_id", "")
    if not is_valid_id(team_id):
        raise errors.invalid_param("team_id")
    custom_only = flag(request, "custom_only")
    # api4/command.go listCommands: view_team first, then custom_only needs manage_slash_commands;
    # everyone else sees the autocomplete listing only.
    if not world.has_team_permission(team_id, me["id"], "view_team"):
        raise errors.permissions("view_team")
    manager = world.has_team_permission(team_id, me["id"], "manage_slash_commands")
    if custom_only and not manager:
        raise errors.permissions("manage_slash_commands")
    result = []
    for cmd in world.commands.values():
        if cmd["team_id"] != team_id or cmd["delete_at"]:
            continue
        if manager:
            result.append(cmd)
        elif cmd["auto_complete"]:
            result.append(dict(cmd, token="", url="", method="", username="", icon_url="", creator_id=""))
    return json_response(result)


async def get_command(request: web.Request) -> web.Response:
    return json_response(_manageable_command(request))


async def update_command(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    cmd = _manageable_command(request)
    body = await read_json(request, "command")
    if body.get("id") != cmd["id"]:
        raise errors.invalid_body_param("id")
    if body.get("team_id", cmd["team_id"]) != cmd["team_id"]:
        raise AppError(400, "api.command.team_mismatch.app_error",
                       "Unable to update commands across teams.")
    updated = dict(cmd)
    for key in COMMAND_FIELDS:
        if key in body and body[key] is not None:
            updated[key] = body[key]
    if isinstance(updated["trigger"], str):
        updated["trigger"] = updated["trigger"].strip().lower()
    _validate_command(updated)
    _check_trigger_free(world, cmd["team_id"], updated["trigger"], except_id=cmd["id"])
    updated["update_at"] = now_ms()
    cmd.update(updated)
    world.touch()
    return json_response(cmd)


async def delete_command(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    cmd = _manageable_command(request)
    cmd["delete_at"] = cmd["update_at"] = now_ms()
    world.touch()
    return status_ok()


async def regen_token(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    cmd = _manageable_command(request)
    cmd["token"] = new_id()
    cmd["update_at"] = now_ms()
    world.touch()
    return json_response({"token": cmd["token"]})


# ---------------------------------------------------------------------- executing commands
def _command_fields(sb: Sandbox, cmd: dict, user: dict, ch: dict, team: dict, trigger: str,
                    text: str, root_id: str, trigger_id: str, hook_id: str) -> list[tuple[str, str]]:
    world = sb.world
    fields = [
        ("channel_id", ch["id"]), ("channel_name", ch["name"]), ("command", "/" + trigger),
        ("response_url", f"{sb.site_url}/hooks/commands/{hook_id}"),
        ("root_id", root_id), ("team_domain", team["name"]), ("team_id", team["id"]),
        ("text", text), ("token", cmd["token"]), ("trigger_id", trigger_id),
        ("user_id", user["id"]), ("user_name", user["username"]),
    ]
    mentioned = []
    for m in re.finditer(r"@([a-z0-9][a-z0-9._\-]*)", text, re.IGNORECASE):
        name = m.group(1).lower().rstrip(".-_")
        uid = world.user_by_name.get(name)
        if uid and world.is_team_member(team["id"], uid) and (name, uid) not in mentioned:
            mentioned.append((name, uid))
    for name, uid in mentioned:
        fields += [("user_mentions", name), ("user_mentions_ids", uid)]
    channels = []
    for m in re.finditer(r"~([a-z0-9][a-z0-9_\-]*)", text):
        cid = world.channel_by_name.get((team["id"], m.group(1)))
        if cid and world.channels[cid]["type"] == "O" and (m.group(1), cid) not in channels:
            channels.append((m.group(1), cid))
    for name, cid in channels:
        fields += [("channel_mentions", name), ("channel_mentions_ids", cid)]
    return fields


def parse_command_response(content_type: str, body: bytes) -> dict:
    """Mattermost's CommandResponseFromHTTPBody: JSON only for application/json."""
    if content_type.split(";")[0].strip().lower() == "application/json":
        data = json.loads(body)  # an empty body raises: Mattermost treats it as a failure
        if not isinstance(data, dict):
            raise ValueError("command response is not a JSON object")
        return data
    return {"text": body.decode("utf-8", "replace")}


def apply_command_response(sb: Sandbox, resp: dict, *, user_id: str, channel_id: str,
                           root_id: str) -> None:
    """Turn a CommandResponse (and its extra_responses) into posts and ephemeral posts."""
    world = sb.world
    for item in [resp, *[r for r in (resp.get("extra_responses") or []) if isinstance(r, dict)]]:
        skip = bool(item.get("skip_slack_parsing"))
        text = str(item.get("text") or "")
        if not skip:
            text = slack_to_markdown(text)
        given_props = item.get("props")
        props: dict = copy.deepcopy(given_props) if isinstance(given_props, dict) else {}
        ptype = str(item.get("type") or "")
        if ptype.startswith("system_"):
            raise AppError(400, "api.command.execute_command.create_post_failed.app_error",
                           "Command failed to post response. Please contact your System Administrator.")
        attachments = item.get("attachments")
        if isinstance(attachments, list) and attachments:
            props["attachments"] = process_attachments(attachments, skip)
            ptype = ptype or "slack_attachment"
        elif isinstance(props.get("attachments"), list):
            props["attachments"] = process_attachments(props["attachments"], skip)
        target = item.get("channel_id") or channel_id
        ch = world.channels.get(target)
        if ch is None or (target != channel_id and not world.is_member(target, user_id)):
            raise errors.permissions("create_post")
        if item.get("response_type") == "in_channel":
            world.create_post(user_id=user_id, channel_id=target, message=text,
                              root_id=root_id if target == channel_id else "", props=props,
                              type=ptype, from_webhook=True)
        elif text or props.get("attachments"):
            props["from_webhook"] = "true"
            world.send_ephemeral(target_user_id=user_id, channel_id=target, message=text,
                                 author_id=user_id, root_id=root_id if target == channel_id else "",
                                 props=props)


async def run_command(sb: Sandbox, user: dict, ch: dict, team: dict, command_text: str,
                      root_id: str = "") -> dict:
    """Execute ``command_text`` as ``user`` in ``ch`` and return the CommandResponse to send."""
    world = sb.world
    m = re.match(r"/(\S+)(?:\s(.*))?\Z", command_text, re.DOTALL)
    if not m:
        raise AppError(400, "api.command.execute_command.start.app_error", "No command trigger found.")
    trigger, text = m.group(1).lower(), m.group(2) or ""
    if trigger in BUILT_IN_COMMANDS:
        resp = BUILT_IN_COMMANDS[trigger](sb, user, ch, text, root_id)
        # HandleCommandResponse: an ephemeral answer goes to the caller as an ephemeral post.
        apply_command_response(sb, resp, user_id=user["id"], channel_id=ch["id"], root_id=root_id)
        return resp
    cmd = next((c for c in world.commands.values()
                if c["team_id"] == team["id"] and c["trigger"] == trigger and not c["delete_at"]), None)
    if cmd is None:
        raise AppError(404, "api.command.execute_command.not_found.app_error",
                       f"Command with a trigger of '/{trigger}' not found. To send a message beginning "
                       f"with \"/\", try adding an empty space at the beginning of the message.")
    client_trigger, trigger_id = issue_trigger_id(sb, user["id"])
    hook = Hook(id=new_id(), command_id=cmd["id"], user_id=user["id"], channel_id=ch["id"],
                root_id=root_id, create_at=now_ms())
    world.command_hooks[hook.id] = hook
    fields = _command_fields(sb, cmd, user, ch, team, trigger, text, root_id, trigger_id, hook.id)
    headers = {"Accept": "application/json", "Authorization": f"Token {cmd['token']}"}
    url = cmd["url"]
    if cmd["method"] == "G":
        url = url + ("&" if "?" in url else "?") + urlencode(fields)
        record = await call_integration(sb, "command", "GET", url, headers=headers)
    else:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        record = await call_integration(sb, "command", "POST", url, headers=headers,
                                        body=urlencode(fields).encode())
    if record.status is None:
        raise AppError(500, "api.command.execute_command.failed.app_error",
                       f"Command with a trigger of '/{trigger}' failed.", record.error or "")
    if record.status != 200:
        raise AppError(500, "api.command.execute_command.failed_resp.app_error",
                       f"Command with a trigger of '/{trigger}' returned response {record.status}.",
                       record.response_body[:100].decode("utf-8", "replace"))
    try:
        resp = parse_command_response(record.response_headers.get("Content-Type", ""),
                                      record.response_body)
    except ValueError as exc:
        raise AppError(500, "api.command.execute_command.failed.app_error",
                       f"Command with a trigger of '/{trigger}' failed.", str(exc)) from None
    apply_command_response(sb, resp, user_id=user["id"], channel_id=ch["id"], root_id=root_id)
    out = {"response_type": "", "text": "", "username": "", "channel_id": "", "icon_url": "",
           "type": "", "props": None, "goto_location": "", "trigger_id": "",
           "skip_slack_parsing": False, "attachments": None, "extra_responses": None}
    out.update({k: v for k, v in resp.items() if k in out})
    out["trigger_id"] = client_trigger
    return out


async def execute_command(request: web.Request) -> web.Response:
    sb = request.app[SB_KEY]
    world = sb.world
    me = caller(request)
    body = await read_json(request, "command_args")
    command = body.get("command", "")
    if not isinstance(command, str) or len(command) <= 1 or not command.startswith("/"):
        raise AppError(400, "api.command.execute_command.start.app_error", "No command trigger found.")
    channel_id = body.get("channel_id", "")
    if not is_valid_id(channel_id):
        raise AppError(400, "api.command.execute_command.start.app_error", "No command trigger found.")
    # api4/command.go executeCommand: create_post at channel scope (create_post_public does not
    # count here), 403 for an unknown channel too; then 400 for an archived one.
    ch = world.channels.get(channel_id)
    if not world.has_channel_permission(me["id"], ch, "create_post"):
        raise errors.permissions("create_post")
    assert ch is not None
    if ch["delete_at"]:
        raise AppError(400, "api.command.execute_command.deleted.error",
                       "Unable to run command in deleted channel.")
    team_id = ch["team_id"] or body.get("team_id", "")
    team = world.teams.get(team_id)
    if team is None or not (world.is_team_member(team_id, me["id"]) or world.is_admin(me["id"])):
        raise errors.permissions("use_slash_commands")
    root_id = body.get("root_id") or body.get("parent_id") or ""
    resp = await run_command(sb, me, ch, team, command, root_id if isinstance(root_id, str) else "")
    return json_response(resp)


async def command_hook(request: web.Request) -> web.Response:
    """POST /hooks/commands/{id}: a delayed response through a command's response_url."""
    sb = request.app[SB_KEY]
    world = sb.world
    hook = world.command_hooks.get(request.match_info["hook_id"])
    if hook is None or (now_ms() - hook.create_at) > sb.config.command_hook_lifetime * 1000:
        raise AppError(404, "app.command_webhook.get.missing", "Unable to find the webhook.")
    if hook.uses >= sb.config.command_hook_max_uses:
        raise AppError(400, "app.command_webhook.try_use.invalid", "Invalid use of the webhook.")
    raw = await request.read()
    try:
        resp = parse_command_response(request.headers.get("Content-Type", ""), raw)
    except ValueError:
        raise AppError(400, "web.command_webhook.parse.app_error",
                       "Unable to parse incoming data.") from None
    hook.uses += 1
    apply_command_response(sb, resp, user_id=hook.user_id, channel_id=hook.channel_id,
                           root_id=hook.root_id)
    return web.Response(body=b"ok", content_type="text/plain")


def setup(app: web.Application) -> None:
    r = app.router
    cid = ID % "command_id"
    r.add_post("/api/v4/commands", create_command)
    r.add_get("/api/v4/commands", list_commands)
    r.add_post("/api/v4/commands/execute", execute_command)
    r.add_get(f"/api/v4/commands/{cid}", get_command)
    r.add_put(f"/api/v4/commands/{cid}", update_command)
    r.add_delete(f"/api/v4/commands/{cid}", delete_command)
    r.add_put(f"/api/v4/commands/{cid}/regen_token", regen_token)
    r.add_post("/hooks/commands/{hook_id}", command_hook)

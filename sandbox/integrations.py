"""Slash commands, interactive message actions, interactive dialogs and webhooks.

These are the server-to-integration callbacks, made exactly as Mattermost makes them
(protocol.md §1–§3), plus the REST routes that drive them.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import logging
import re
from urllib.parse import parse_qs, urlencode

import aiohttp
from aiohttp import web

from . import errors
from .app import SB_KEY, Callback, Sandbox
from .errors import AppError
from .httputil import caller, flag, json_response, path_id, read_json, status_ok
from .ids import is_valid_id, new_id, now_ms
from .state import RETAINED_PROPS, Hook

log = logging.getLogger("sandbox.integrations")

ID = "{%s:[A-Za-z0-9]+}"
RESPONSE_LIMIT = 1024 * 1024
SLACK_LINK_RE = re.compile(r"<([^<>|\s]+)\|([^<>]+)>")
BUILTIN_TRIGGERS = {
    "away", "code", "collapse", "dnd", "echo", "expand", "groupmsg", "header", "help",
    "invite", "invite_people", "join", "kick", "leave", "logout", "me", "msg", "mute",
    "offline", "online", "open", "purpose", "remove", "rename", "search", "settings",
    "shortcuts", "shrug", "status",
}
COMMAND_FIELDS = ("trigger", "method", "username", "icon_url", "auto_complete", "auto_complete_desc",
                  "auto_complete_hint", "display_name", "description", "url")


def action_failed(detail: str = "") -> AppError:
    return AppError(400, "api.post.do_action.action_integration.app_error",
                    "Action integration error.", detail)


# ---------------------------------------------------------------------- trigger ids
def issue_trigger_id(sb: Sandbox, user_id: str) -> tuple[str, str]:
    """A (client trigger id, signed trigger id) pair bound to ``user_id`` and to now."""
    client_id = new_id()
    payload = f"{client_id}:{user_id}:{now_ms()}"
    sig = base64.b64encode(hmac.new(sb.signing_key, payload.encode(), hashlib.sha256).digest()).decode()
    return client_id, base64.b64encode(f"{payload}:{sig}".encode()).decode()


def decode_trigger_id(sb: Sandbox, trigger_id: str) -> tuple[str, str]:
    """Verify a trigger id; returns (client trigger id, user id) or raises the Mattermost error.

    As model/integration_action.go ``DecodeAndVerifyTriggerId`` (called by app/integration_action.go
    ``OpenInteractiveDialog``): every failure is 400 with an ``interactive_message.decode_trigger_id.*``
    id, and age is checked before the signature. The lifetime is ``trigger_id_lifetime`` (3 s by default).
    """
    def fail(reason: str, message: str) -> AppError:
        return AppError(400, f"interactive_message.decode_trigger_id.{reason}", message)
    try:
        decoded = base64.b64decode(trigger_id.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise fail("base64_decode_failed", "Failed to decode base64 for trigger ID for interactive dialog.") from None
    parts = decoded.split(":")
    if len(parts) != 4:
        raise fail("missing_data", "Trigger ID missing required data for interactive dialog.")
    client_id, user_id, ms, sig = parts
    try:
        issued = int(ms)
    except ValueError:
        raise fail("missing_data", "Trigger ID missing required data for interactive dialog.") from None
    lifetime_ms = int(sb.config.trigger_id_lifetime * 1000)
    if now_ms() - issued > lifetime_ms:
        raise fail("expired", f"Trigger ID for interactive dialog is expired. "
                              f"Maximum time allowed is {lifetime_ms}ms.")
    try:
        raw_sig = base64.b64decode(sig.encode(), validate=True)
    except (binascii.Error, ValueError):
        raise fail("base64_decode_failed_signature",
                   "Failed to decode base64 signature of trigger ID for interactive dialog.") from None
    expected = hmac.new(sb.signing_key, f"{client_id}:{user_id}:{ms}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(raw_sig, expected):
        raise fail("verify_signature_failed", "Signature verification failed of trigger ID for interactive dialog.")
    return client_id, user_id


# ---------------------------------------------------------------------- outbound calls
async def call_integration(sb: Sandbox, kind: str, method: str, url: str, *,
                           headers: dict[str, str], body: bytes = b"") -> Callback:
    """Make one callback, recording it in ``sb.callbacks`` before it is sent.

    The returned record has ``status`` None and ``error`` set when the integration
    could not be reached or did not answer within ``integration_timeout``.
    """
    record = Callback(kind=kind, method=method, url=url, headers=dict(headers), body=body)
    sb.callbacks.append(record)
    sb.world.touch()
    assert sb.http is not None
    try:
        async with sb.http.request(method, url, data=body if method != "GET" else None,
                                   headers=headers, allow_redirects=False) as resp:
            data = await resp.content.read(RESPONSE_LIMIT)
            record.status = resp.status
            record.response_headers = dict(resp.headers)
            record.response_body = data
    except TimeoutError:
        record.error = f"timeout after {sb.config.integration_timeout}s"
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        record.error = f"{type(exc).__name__}: {exc}"
    sb.world.touch()
    return record


def slack_to_markdown(text: str) -> str:
    """Convert Slack ``<url|label>`` links to Markdown like Mattermost does."""
    return SLACK_LINK_RE.sub(lambda m: f"[{m.group(2)}]({m.group(1)})", text)


def process_attachments(attachments: list, skip_parsing: bool = False) -> list:
    """Stringify field values and convert Slack links, as ``ProcessSlackAttachments`` does."""
    result = []
    for att in attachments:
        if not isinstance(att, dict):
            continue
        att = copy.deepcopy(att)
        if not skip_parsing:
            for key in ("pretext", "text", "title"):
                if isinstance(att.get(key), str):
                    att[key] = slack_to_markdown(att[key])
        for fld in att.get("fields") or []:
            if isinstance(fld, dict) and "value" in fld and not isinstance(fld["value"], str):
                fld["value"] = json.dumps(fld["value"]) if not isinstance(fld["value"], (int, float)) \
                    else str(fld["value"])
        result.append(att)
    return result


# ---------------------------------------------------------------------- command CRUD
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
        props = copy.deepcopy(item.get("props")) if isinstance(item.get("props"), dict) else {}
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


def _empty_command_response() -> dict:
    return {"response_type": "", "text": "", "username": "", "channel_id": "", "icon_url": "", "type": "",
            "props": None, "goto_location": "", "trigger_id": "", "skip_slack_parsing": False,
            "attachments": None, "extra_responses": None}


def _ephemeral_command_response(text: str) -> dict:
    """How the built-in providers refuse: a 200 answer with an ephemeral text for the caller."""
    return {**_empty_command_response(), "response_type": "ephemeral", "text": text}


def _builtin_channel_property(sb: Sandbox, user: dict, ch: dict, text: str, field: str) -> dict:
    """``/header text`` and ``/purpose text`` as HeaderProvider / PurposeProvider run them
    (app/slashcommands/command_channel_header.go, command_channel_purpose.go): the *caller's*
    manage_*_channel_properties in the channel, then a non-empty text, then the patch and its
    system post. Each refusal is an ephemeral answer, not an HTTP error."""
    world = sb.world
    noun = "header" if field == "header" else "purpose"
    if ch["type"] not in ("O", "P") and field == "purpose":
        return _ephemeral_command_response("Unable to update the channel purpose of direct or group messages.")
    permission = "manage_public_channel_properties" if ch["type"] == "O" else "manage_private_channel_properties"
    if ch["type"] in ("O", "P") and not world.has_channel_permission(user["id"], ch, permission):
        return _ephemeral_command_response(f"You don't have the appropriate permissions to edit the channel {noun}.")
    if ch["type"] not in ("O", "P") and not world.is_member(ch["id"], user["id"]):
        return _ephemeral_command_response(f"You don't have the appropriate permissions to edit the channel {noun}.")
    if not text:
        return _ephemeral_command_response(f"Message must be provided with the /{noun} command.")
    old = ch.get(field, "")
    world.patch_channel(ch, {field: text})
    world.create_post(user_id=user["id"], channel_id=ch["id"], type=f"system_{field}_change",
                      message=f"{user['username']} updated the channel {noun} from: {old} to: {text}",
                      props={"username": user["username"], f"old_{field}": old, f"new_{field}": text})
    return _empty_command_response()


def _builtin_header(sb: Sandbox, user: dict, ch: dict, text: str, root_id: str) -> dict:
    """``/header text``: set the channel header, with Mattermost's system post."""
    return _builtin_channel_property(sb, user, ch, text, "header")


def _builtin_purpose(sb: Sandbox, user: dict, ch: dict, text: str, root_id: str) -> dict:
    """``/purpose text``: set the channel purpose, with Mattermost's system post."""
    return _builtin_channel_property(sb, user, ch, text, "purpose")


def _builtin_echo(sb: Sandbox, user: dict, ch: dict, text: str, root_id: str) -> dict:
    """``/echo text``: post the text as the user (EchoProvider; an empty text is refused)."""
    if not text:
        return _ephemeral_command_response("A message must be provided with the /echo command.")
    sb.world.create_post(user_id=user["id"], channel_id=ch["id"], message=text, root_id=root_id)
    return _empty_command_response()


# The built-in commands a bot's playbook steps commonly run (Mattermost has more).
BUILT_IN_COMMANDS = {"header": _builtin_header, "purpose": _builtin_purpose, "echo": _builtin_echo}


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


def _webhook_channel(world, hook: dict, name: str) -> dict:
    """The channel a webhook payload goes to (HandleIncomingWebhook): its own, ``@user`` (a DM
    with the hook's owner), or a channel name (``#`` optional) of the hook's team; a locked hook
    refuses any other channel with 403."""
    if not name:
        return world.channels[hook["channel_id"]]
    if name.startswith("@"):
        uid = world.user_by_name.get(name[1:])
        if not uid:
            raise AppError(400, "web.incoming_webhook.user.app_error", "Couldn't find the user.")
        ch = world.direct_channel(hook["user_id"], uid)[0]
    else:
        cid = world.channel_by_name.get((hook["team_id"], name.removeprefix("#")))
        if not cid:
            raise AppError(404, "web.incoming_webhook.channel.app_error", "Couldn't find the channel.")
        ch = world.channels[cid]
    if hook["channel_locked"] and ch["id"] != hook["channel_id"]:
        raise AppError(403, "web.incoming_webhook.channel_locked.app_error",
                       "This webhook is not permitted to post to the requested channel.")
    return ch


def _webhook_props(sb, hook: dict, data: dict) -> dict:
    """The props of an incoming-webhook post as app/webhook.go sets them.

    HandleIncomingWebhook adds ``webhook_display_name`` (the hook's display name, even empty);
    CreateWebhookPost adds ``from_webhook``, ``override_username`` (payload, else hook, else
    "webhook") only with ``EnablePostUsernameOverride``, ``override_icon_url`` (payload
    ``icon_emoji``, else ``icon_url``, else the hook's) only with ``EnablePostIconOverride``, and
    copies the payload's other props; the payload cannot set those reserved keys itself, and a
    props ``attachments`` is not taken (only top-level ``attachments`` are).
    """
    given = data.get("props") if isinstance(data.get("props"), dict) else {}
    props = {k: v for k, v in given.items()
             if k not in ("from_webhook", "override_username", "override_icon_url", "attachments")}
    props["webhook_display_name"] = hook.get("display_name", "")
    if sb.config.enable_post_username_override:
        props["override_username"] = str(data.get("username") or "") or hook.get("username") or "webhook"
    if sb.config.enable_post_icon_override:
        icon = str(data.get("icon_emoji") or "") or str(data.get("icon_url") or "") or hook.get("icon_url", "")
        if icon:
            props["override_icon_url"] = icon
    return props


async def incoming_webhook(request: web.Request) -> web.Response:
    """POST /hooks/{id}: an incoming webhook (JSON body or form ``payload``)."""
    sb = request.app[SB_KEY]
    world = sb.world
    hook = world.incoming_hooks.get(request.match_info["hook_id"])
    if hook is None:
        raise AppError(400, "web.incoming_webhook.invalid.app_error", "Invalid webhook.")
    raw = await request.read()
    try:
        if request.content_type == "application/x-www-form-urlencoded":
            payload = parse_qs(raw.decode()).get("payload", [""])[0]
            data = json.loads(payload)
        else:
            data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError
    except ValueError:
        raise AppError(400, "api.webhook.incoming.error", "Could not decode the multipart payload "
                       "of incoming webhook.") from None
    text = str(data.get("text") or "")
    attachments = data.get("attachments")
    # app/webhook.go HandleIncomingWebhook: refused only when there is no text and no attachments
    # key at all (an empty list is a payload).
    if not text and attachments is None:
        raise AppError(400, "web.incoming_webhook.text.app_error", "No text specified.")
    ch = _webhook_channel(world, hook, str(data.get("channel") or ""))
    user_id = hook["user_id"]
    if ch["type"] != "O" and not world.is_member(ch["id"], user_id) and not world.is_admin(user_id):
        raise AppError(403, "web.incoming_webhook.permissions.app_error", "Inappropriate channel permissions.")
    ptype = str(data.get("type") or "")
    if ptype.startswith("system_"):
        # CreateWebhookPost refuses system post types.
        raise AppError(400, "api.context.invalid_param.app_error", "Invalid post.type parameter.")
    props = _webhook_props(sb, hook, data)
    if isinstance(attachments, list) and attachments:
        props["attachments"] = process_attachments(attachments)
        ptype = "slack_attachment"
    world.create_post(user_id=user_id, channel_id=ch["id"], message=slack_to_markdown(text),
                      props=props, type=ptype, from_webhook=True,
                      override_username=str(props.get("override_username") or ""))
    return web.Response(body=b"ok", content_type="text/plain")


# ---------------------------------------------------------------------- post actions
def find_action(props: dict, action_id: str) -> dict | None:
    for att in props.get("attachments") or []:
        if isinstance(att, dict):
            for action in att.get("actions") or []:
                if isinstance(action, dict) and str(action.get("id")) == action_id:
                    return action
    return None


def _integration_answer(record: Callback) -> dict:
    """The JSON object an action or dialog integration answered (empty body = {}); anything else
    fails the way Mattermost fails it (400 action_integration)."""
    if record.status != 200:
        raise action_failed(record.error or f"status {record.status}")
    if not record.response_body.strip():
        return {}
    try:
        resp = json.loads(record.response_body)
    except ValueError:
        raise action_failed("invalid JSON response") from None
    if not isinstance(resp, dict):
        raise action_failed("response is not an object")
    return resp


async def do_post_action(request: web.Request) -> web.Response:
    sb = request.app[SB_KEY]
    world = sb.world
    me = caller(request)
    post_id = path_id(request, "post_id")
    action_id = request.match_info["action_id"]
    body = await read_json(request, "post_action", allow_empty=True)
    selected = body.get("selected_option", "") or ""
    cookie = body.get("cookie", "") or ""
    post = world.posts.get(post_id)
    ephemeral = world.ephemeral.get(post_id)
    if post is not None and not post["delete_at"]:
        integrations = world.action_integrations.get(post_id, {})
    elif ephemeral is not None and ephemeral.target_user_id == me["id"]:
        post = ephemeral.post
        integrations = ephemeral.integrations
        action = find_action(post["props"], action_id)
        if action is None or not cookie or action.get("cookie") != cookie:
            raise AppError(400, "api.post.do_action.action_integration.app_error", "Invalid cookie.")
    else:
        raise errors.post_missing()
    # api4/integration_action.go doPostAction: a stored post needs read_channel_content via
    # SessionHasPermissionToChannelByPost in released servers — channel scope, so clicking needs
    # membership even in a public channel (master relaxed it to SessionHasPermissionToReadPost;
    # the stricter form is kept). An ephemeral post's cookie channel needs
    # SessionHasPermissionToReadChannel.
    ch = world.channels[post["channel_id"]]
    if ephemeral is not None and post is ephemeral.post:
        allowed = world.can_read_channel(me["id"], ch)
    else:
        allowed = world.has_channel_permission(me["id"], ch, "read_channel_content")
    if not allowed:
        raise errors.permissions("read_channel_content")
    action = find_action(post["props"], action_id)
    if action is None:
        raise AppError(404, "api.post.do_action.action_id.app_error", "Invalid action id.")
    integration = integrations.get(action_id)
    if not integration or not integration.get("url"):
        raise action_failed("no integration url")
    context = copy.deepcopy(integration.get("context")) if isinstance(integration.get("context"), dict) else {}
    atype = str(action.get("type") or "")
    data_source = ""
    if selected:
        context["selected_option"] = selected
        data_source = str(action.get("data_source") or "")
    client_trigger, trigger_id = issue_trigger_id(sb, me["id"])
    team = world.teams.get(ch["team_id"])
    payload = {
        "user_id": me["id"], "user_name": me["username"], "channel_id": ch["id"],
        "channel_name": ch["name"], "team_id": ch["team_id"], "team_domain": team["name"] if team else "",
        "post_id": post_id, "trigger_id": trigger_id, "type": atype, "data_source": data_source,
        "context": context,
    }
    record = await call_integration(
        sb, "action", "POST", str(integration["url"]),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        body=json.dumps(payload).encode())
    resp = _integration_answer(record)
    root_id = post["root_id"] or post["id"]
    retained = {k: post["props"][k] for k in RETAINED_PROPS if k in post["props"]}
    update = resp.get("update")
    on_ephemeral = post is not world.posts.get(post_id)
    if isinstance(update, dict):
        if on_ephemeral and not sb.config.update_ephemeral_in_place:
            raise _ephemeral_update_refused()
        _apply_update(sb, post, ephemeral if on_ephemeral else None, update, retained, me["id"])
    text = resp.get("ephemeral_text")
    if isinstance(text, str) and text:
        if not resp.get("skip_slack_parsing"):
            text = slack_to_markdown(text)
        world.send_ephemeral(target_user_id=me["id"], channel_id=ch["id"], message=text,
                             author_id=me["id"], root_id=root_id, props=retained)
    return json_response({"status": "OK", "trigger_id": client_trigger})


def _ephemeral_update_refused() -> AppError:
    """What a released server answers when an integration ``update``s an ephemeral post.

    app/integration_action.go ``DoPostActionWithCookie`` (released versions) passes any non-null
    ``update`` to app/post.go ``UpdatePost``, which reads the post from the database; an ephemeral post was never
    stored, so the store's not-found becomes 404 ``app.post.get.app_error``. The error returns before
    ``ephemeral_text`` is handled, so the clicker sees only the action error and the post stays.
    (Newer code, ``applyPostActionUpdate`` with ``ephemeralInteractive``, calls UpdateEphemeralPost
    instead: ``SandboxConfig.update_ephemeral_in_place``.)
    """
    return errors.post_missing()


def _apply_update(sb: Sandbox, post: dict, ephemeral, update: dict, retained: dict, user_id: str) -> None:
    """Apply an action ``update`` with Mattermost's prop-retention rules (protocol §2.3)."""
    world = sb.world
    if "props" not in update or update["props"] is None:
        new_props = copy.deepcopy(post["props"])
    else:
        new_props = copy.deepcopy(update["props"]) if isinstance(update["props"], dict) else {}
        new_props.update(retained)
    if isinstance(new_props.get("attachments"), list):
        new_props["attachments"] = process_attachments(new_props["attachments"])
    message = str(update.get("message") or "")
    if ephemeral is not None:
        previous = ephemeral.integrations
        ephemeral.integrations = world._prepare_actions(new_props, previous)
        # Like SendEphemeralPost, an updated ephemeral post gets fresh cookies so it stays clickable.
        world.add_action_cookies(new_props, ephemeral.integrations)
        post.update(message=message, props=new_props, update_at=now_ms())
        world.emit("post_edited", {"post": json.dumps(post)}, user_id=user_id)
        world.touch()
        return
    world.edit_post(post, message=message, props=new_props, edited=message != post["message"])


# ---------------------------------------------------------------------- dialogs
async def open_dialog(request: web.Request) -> web.Response:
    sb = request.app[SB_KEY]
    body = await read_json(request, "dialog")
    if not isinstance(body.get("url"), str) or not body["url"]:
        raise errors.invalid_param("url")
    if not isinstance(body.get("trigger_id"), str):
        raise errors.invalid_param("trigger_id")
    client_trigger, user_id = decode_trigger_id(sb, body["trigger_id"])
    dialog = body.get("dialog") if isinstance(body.get("dialog"), dict) else {}
    event = {"trigger_id": client_trigger, "url": body["url"], "dialog": dialog}
    sb.world.emit("open_dialog", {"dialog": json.dumps(event)}, user_id=user_id)
    sb.world.touch()
    return status_ok()


async def submit_dialog(request: web.Request) -> web.Response:
    sb = request.app[SB_KEY]
    world = sb.world
    me = caller(request)
    body = await read_json(request, "dialog")
    url = body.get("url")
    channel_id = body.get("channel_id", "")
    if not isinstance(url, str) or not url:
        raise errors.invalid_param("url")
    # api4/integration_action.go submitDialog: 404 for an unknown channel, then
    # SessionHasPermissionToReadChannel (public channels are readable by the team), then view_team.
    ch = world.channels.get(channel_id) if isinstance(channel_id, str) else None
    if ch is None:
        raise errors.channel_missing()
    if not world.can_read_channel(me["id"], ch):
        raise errors.permissions("read_channel_content")
    team_id = ch["team_id"]
    if team_id and not world.has_team_permission(team_id, me["id"], "view_team"):
        raise errors.permissions("view_team")
    cancelled = bool(body.get("cancelled"))
    submission = body.get("submission")
    payload = {
        "type": "dialog_submission", "callback_id": str(body.get("callback_id", "") or ""),
        "state": str(body.get("state", "") or ""), "user_id": me["id"], "channel_id": ch["id"],
        "team_id": team_id, "submission": None if cancelled else (submission if isinstance(submission, dict) else {}),
        "cancelled": cancelled,
    }
    record = await call_integration(
        sb, "dialog", "POST", url,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        body=json.dumps(payload).encode())
    resp = _integration_answer(record)
    out = {k: v for k, v in resp.items() if k in ("error", "errors", "type", "form") and v}
    return json_response(out)


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
    r.add_post(f"/api/v4/posts/{ID % 'post_id'}/actions/{ID % 'action_id'}", do_post_action)
    r.add_post("/api/v4/actions/dialogs/open", open_dialog)
    r.add_post("/api/v4/actions/dialogs/submit", submit_dialog)
    r.add_post("/hooks/commands/{hook_id}", command_hook)
    r.add_post("/hooks/{hook_id}", incoming_webhook)

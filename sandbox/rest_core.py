"""REST v4: system, users, teams, bots and files."""

from __future__ import annotations

import hashlib
import mimetypes
import re
from email.parser import BytesParser
from email.policy import default as email_policy

from aiohttp import web

from . import errors
from .errors import AppError
from .httputil import ID, USER, caller, flag, json_response, paging, path_id, read_json, user_path_id
from .ids import is_valid_id, new_id, now_ms
from .keys import SB_KEY
from .state import ROLE_PERMISSIONS


def _uid_param(name: str = "user_id") -> str:
    return ID % name


async def ping(request: web.Request) -> web.Response:
    body = {"ActiveSearchBackend": "database", "AndroidLatestVersion": "", "AndroidMinVersion": "",
            "IosLatestVersion": "", "IosMinVersion": "", "status": "OK"}
    if flag(request, "get_server_status"):
        body.update({"database_status": "OK", "filestore_status": "OK"})
    return json_response(body)


async def get_client_config(request: web.Request) -> web.Response:
    """api4/config.go ``getClientConfig``: ``format`` must be ``old`` (missing: 501, other: 400). No
    permission is needed; a signed-in session (a bot's too) gets config/client.go ``GenerateClientConfig``,
    which includes ``PostEditTimeLimit`` (the number as a string); without a session only the limited
    set, which does not."""
    fmt = request.query.get("format", "")
    if not fmt:
        raise AppError(501, "api.config.client.old_format.app_error",
                       "New format for the client configuration is not supported yet. Please specify "
                       "format=old in the query string.")
    if fmt != "old":
        raise errors.invalid_param("format")
    sb = request.app[SB_KEY]
    config = {"Version": sb.config.server_version, "BuildNumber": sb.config.server_version,
              "SiteURL": sb.site_url, "SiteName": "Mattermost"}
    if request.get(USER):
        config.update({"PostEditTimeLimit": str(sb.world.post_edit_time_limit), "EnableCommands": "true",
                       "EnablePostUsernameOverride": str(sb.config.enable_post_username_override).lower(),
                       "EnablePostIconOverride": str(sb.config.enable_post_icon_override).lower()})
    return json_response(config)


# ---------------------------------------------------------------------- roles
_ROLE_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
_ROLES_BY_NAMES_MAX = 100  # api4/role.go GetRolesByNamesMax


def _role(name: str) -> dict:
    if name == "system_admin":  # every permission; these are the ones the sandbox knows
        permissions = sorted(set().union(*ROLE_PERMISSIONS.values()) | {"create_post_ephemeral", "manage_system"})
    else:
        permissions = sorted(ROLE_PERMISSIONS[name])
    role_id = hashlib.sha256(b"role:" + name.encode()).hexdigest()[:26]
    return {"id": role_id, "name": name, "display_name": f"authentication.roles.{name}.name",
            "description": "", "create_at": 0, "update_at": 0, "delete_at": 0, "permissions": permissions,
            "scheme_managed": True, "built_in": True}


async def get_roles_by_names(request: web.Request) -> web.Response:
    """api4/role.go ``getRolesByNames``: any session; a JSON array of names (none: 400, more than 100:
    400, a name not ``[a-z0-9_]``: 400, blanks skipped); the roles that exist, with their permissions."""
    names = await read_json(request, "rolenames", expect=list)
    if not names:
        raise errors.invalid_param("rolenames")
    if len(names) > _ROLES_BY_NAMES_MAX:
        raise AppError(400, "api.roles.get_multiple_by_name_too_many.request_error",
                       f"Unable to get more than {_ROLES_BY_NAMES_MAX} roles by name.")
    cleaned = []
    for name in names:
        if not isinstance(name, str):
            raise errors.invalid_param("rolename")
        name = name.strip()
        if not name:
            continue
        if not _ROLE_NAME.match(name):
            raise errors.invalid_param("rolename")
        cleaned.append(name)
    known = [n for n in dict.fromkeys(cleaned) if n == "system_admin" or n in ROLE_PERMISSIONS]
    return json_response([_role(n) for n in known])


# ---------------------------------------------------------------------- users
async def get_user(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    return json_response(world.get_user(user_path_id(request)))


async def get_user_by_username(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    uid = world.user_by_name.get(request.match_info["username"].lower())
    if not uid:
        raise errors.user_missing()
    return json_response(world.users[uid])


async def get_users_by_ids(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    ids = await read_json(request, "user_ids", expect=list)
    if not ids or not all(isinstance(i, str) for i in ids):
        raise errors.invalid_body_param("user_ids")
    since = int(request.query.get("since", "0") or 0)
    users = [world.users[i] for i in dict.fromkeys(ids)
             if i in world.users and world.users[i]["update_at"] > since]
    return json_response(users)


async def get_users_by_usernames(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    names = await read_json(request, "usernames", expect=list)
    if not names or not all(isinstance(n, str) for n in names):
        raise errors.invalid_body_param("usernames")
    users = [world.users[world.user_by_name[n]] for n in dict.fromkeys(names) if n in world.user_by_name]
    return json_response(users)


async def get_users(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    page, per_page = paging(request, default=60, maximum=200)
    candidates = list(world.users.values())
    in_team = request.query.get("in_team")
    in_channel = request.query.get("in_channel")
    not_in_channel = request.query.get("not_in_channel")
    if in_team:
        if not is_valid_id(in_team):
            raise errors.invalid_url_param("in_team")
        # api4/user.go getUsers: in_team needs view_team in that team.
        if not world.has_team_permission(in_team, me["id"], "view_team"):
            raise errors.permissions("view_team")
        members = world.team_members.get(in_team, {})
        candidates = [u for u in candidates if u["id"] in members]
    for param in (in_channel, not_in_channel):
        if param is None:
            continue
        if not is_valid_id(param):
            raise errors.invalid_url_param("in_channel" if param is in_channel else "not_in_channel")
        # api4/user.go getUsers: in_channel / not_in_channel need read_channel at channel scope
        # (members only, even for a public channel; 403 for an unknown one too).
        ch = world.channels.get(param)
        if not world.can_read_members(me["id"], ch):
            raise errors.permissions("read_channel")
        members = world.channel_members[param]
        keep = param is in_channel
        candidates = [u for u in candidates if (u["id"] in members) == keep]
    candidates.sort(key=lambda u: u["username"])
    return json_response(candidates[page * per_page:(page + 1) * per_page])


async def get_teams_for_user(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    uid = user_path_id(request)
    # api4/team.go getTeamsForUser / getTeamMembersForUser: SessionHasPermissionToUser.
    if uid != me["id"] and not world.has_system_permission(me["id"], "edit_other_users"):
        raise errors.permissions("edit_other_users")
    teams = [t for tid, t in world.teams.items() if uid in world.team_members[tid]]
    return json_response(teams)


async def get_team_members_for_user(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    uid = user_path_id(request)
    # api4/team.go getTeamsForUser / getTeamMembersForUser: SessionHasPermissionToUser.
    if uid != me["id"] and not world.has_system_permission(me["id"], "edit_other_users"):
        raise errors.permissions("edit_other_users")
    return json_response([m[uid] for m in world.team_members.values() if uid in m])


# ---------------------------------------------------------------------- teams
def _visible_team(request: web.Request, team: dict) -> dict:
    world = request.app[SB_KEY].world
    me = caller(request)
    if not (world.is_team_member(team["id"], me["id"]) or world.is_admin(me["id"])
            or (team["type"] == "O" and team["allow_open_invite"])):
        raise errors.permissions("view_team")
    return team


async def get_team(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    team = world.teams.get(path_id(request, "team_id"))
    if team is None:
        raise errors.team_missing()
    return json_response(_visible_team(request, team))


async def get_team_by_name(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    tid = world.team_by_name.get(request.match_info["name"])
    if tid is None:
        raise AppError(404, "app.team.get_by_name.missing.app_error",
                       "Unable to find the existing team.")
    return json_response(_visible_team(request, world.teams[tid]))


def _team_for_members(request: web.Request) -> str:
    world = request.app[SB_KEY].world
    me = caller(request)
    tid = path_id(request, "team_id")
    if tid not in world.teams:
        if world.is_admin(me["id"]):
            raise errors.team_missing()
        raise errors.permissions("view_team")
    if not (world.is_team_member(tid, me["id"]) or world.is_admin(me["id"])):
        raise errors.permissions("view_team")
    return tid


async def get_team_members(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    tid = _team_for_members(request)
    page, per_page = paging(request)
    members = list(world.team_members[tid].values())
    return json_response(members[page * per_page:(page + 1) * per_page])


async def get_team_member(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    tid = _team_for_members(request)
    uid = user_path_id(request)
    member = world.team_members[tid].get(uid)
    if member is None:
        raise AppError(404, "app.team.get_member.missing.app_error",
                       "No team member found for that user ID and team ID.")
    return json_response(member)


# ---------------------------------------------------------------------- bots
async def get_bot(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    bid = path_id(request, "bot_user_id")
    bot = world.bots.get(bid)
    if bot is None:
        raise AppError(404, "store.sql_bot.get.missing.app_error", "Bot does not exist.")
    if not (world.is_admin(me["id"]) or me["id"] in (bid, bot["owner_id"])):
        raise errors.permissions("read_others_bots")
    return json_response(bot)


# ---------------------------------------------------------------------- files
async def upload_file(request: web.Request) -> web.Response:
    sb = request.app[SB_KEY]
    world = sb.world
    me = caller(request)
    channel_id = request.query.get("channel_id", "")
    parts: list[tuple[str, bytes]] = []
    client_ids: list[str] = []
    if request.content_type.startswith("multipart/"):
        # Parsed from the (possibly already recorded) body bytes rather than the stream.
        raw = await request.read()
        msg = BytesParser(policy=email_policy).parsebytes(
            f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode() + raw)
        if not msg.is_multipart():
            raise errors.invalid_param("multipart")
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            decoded = part.get_payload(decode=True)
            payload = decoded if isinstance(decoded, bytes) and decoded else b""
            if name == "channel_id":
                channel_id = payload.decode().strip()
            elif name == "client_ids":
                client_ids.append(payload.decode().strip())
            elif name == "files":
                parts.append((part.get_filename() or "file", payload))
    else:
        filename = request.query.get("filename", "")
        if not filename:
            raise errors.invalid_param("filename")
        parts.append((filename, await request.read()))
    if not is_valid_id(channel_id):
        raise errors.invalid_param("channel_id")
    if not parts:
        raise AppError(400, "api.file.upload_file.incorrect_number_of_files.app_error",
                       "Unable to upload files. Incorrect number of files specified.")
    # api4/file.go uploadFile: upload_file at channel scope (members; 403 for unknown channels).
    if not world.has_channel_permission(me["id"], world.channels.get(channel_id), "upload_file"):
        raise errors.permissions("upload_file")
    infos = []
    t = now_ms()
    for name, data in parts:
        fid = new_id()
        ext = name.rsplit(".", 1)[1].lower() if "." in name else ""
        info = {
            "id": fid, "user_id": me["id"], "channel_id": channel_id, "create_at": t,
            "update_at": t, "delete_at": 0, "name": name, "extension": ext, "size": len(data),
            "mime_type": mimetypes.guess_type(name)[0] or "application/octet-stream",
            "width": 0, "height": 0, "has_preview_image": False, "mini_preview": None,
            "remote_id": "", "archived": False,
        }
        world.files[fid] = (info, data)
        infos.append(info)
    world.touch()
    return json_response({"file_infos": infos, "client_ids": client_ids}, status=201)


def _readable_file(request: web.Request) -> tuple[dict, bytes]:
    world = request.app[SB_KEY].world
    me = caller(request)
    rec = world.files.get(path_id(request, "file_id"))
    if rec is None or rec[0]["delete_at"]:
        raise AppError(404, "app.file_info.get.app_error", "Unable to get the file info.")
    info = rec[0]
    # api4/file.go getFile / getFileInfo: the uploader, or read_channel_content on the file's
    # channel. Released servers check it at channel scope (members only); that strictest form is kept.
    ch = world.channels.get(info["channel_id"])
    if info["user_id"] != me["id"] and not world.has_channel_permission(me["id"], ch, "read_channel_content"):
        raise errors.permissions("read_channel_content")
    return rec


async def get_file(request: web.Request) -> web.Response:
    info, data = _readable_file(request)
    resp = web.Response(body=data, content_type=info["mime_type"])
    resp.headers["Content-Disposition"] = f'attachment;filename="{info["name"]}"'
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


async def get_file_info(request: web.Request) -> web.Response:
    info, _ = _readable_file(request)
    return json_response(info)


def setup(app: web.Application) -> None:
    uid = _uid_param()
    r = app.router
    r.add_get("/api/v4/system/ping", ping)
    r.add_get("/api/v4/config/client", get_client_config)
    r.add_post("/api/v4/roles/names", get_roles_by_names)
    r.add_get("/api/v4/users", get_users)
    r.add_post("/api/v4/users/ids", get_users_by_ids)
    r.add_post("/api/v4/users/usernames", get_users_by_usernames)
    r.add_get("/api/v4/users/username/{username}", get_user_by_username)
    r.add_get(f"/api/v4/users/{uid}", get_user)
    r.add_get(f"/api/v4/users/{uid}/teams", get_teams_for_user)
    r.add_get(f"/api/v4/users/{uid}/teams/members", get_team_members_for_user)
    r.add_get("/api/v4/teams/name/{name}", get_team_by_name)
    r.add_get(f"/api/v4/teams/{ID % 'team_id'}", get_team)
    r.add_get(f"/api/v4/teams/{ID % 'team_id'}/members", get_team_members)
    r.add_get(f"/api/v4/teams/{ID % 'team_id'}/members/{uid}", get_team_member)
    r.add_get(f"/api/v4/bots/{ID % 'bot_user_id'}", get_bot)
    r.add_post("/api/v4/files", upload_file)
    r.add_get(f"/api/v4/files/{ID % 'file_id'}", get_file)
    r.add_get(f"/api/v4/files/{ID % 'file_id'}/info", get_file_info)

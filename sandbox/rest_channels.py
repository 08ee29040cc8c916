"""REST v4: channels and channel members."""

from __future__ import annotations

from aiohttp import web

from . import errors
from .app import SB_KEY
from .errors import AppError
from .httputil import caller, flag, json_response, paging, path_id, read_json, status_ok, user_path_id
from .ids import is_valid_id
from .posts_view import channel_post_list, pinned_post_list

ID = "{%s:[A-Za-z0-9]+}"
CID = ID % "channel_id"


def readable_channel(request: web.Request, channel_id: str) -> dict:
    """The channel if the caller may read it; 404 if unknown, 403 otherwise (like getChannel)."""
    world = request.app[SB_KEY].world
    ch = world.channels.get(channel_id)
    if ch is None:
        raise errors.channel_missing()
    if not world.can_read_channel(caller(request)["id"], ch):
        raise errors.permissions("read_channel")
    return ch


async def create_channel(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    body = await read_json(request, "channel")
    team_id = body.get("team_id", "")
    ctype = body.get("type", "")
    if not is_valid_id(team_id):
        raise AppError(400, "model.channel.is_valid.team_id.app_error", "Invalid team id.")
    if ctype not in ("O", "P"):
        raise AppError(400, "model.channel.is_valid.type.app_error", "Invalid type.")
    if not (world.is_team_member(team_id, me["id"]) or world.is_admin(me["id"])):
        raise errors.permissions("create_public_channel" if ctype == "O" else "create_private_channel")
    if team_id not in world.teams:
        raise errors.team_missing()
    ch = world.create_channel(team_id=team_id, name=str(body.get("name", "")),
                              display_name=str(body.get("display_name", "")), ctype=ctype,
                              creator_id=me["id"], purpose=str(body.get("purpose", "")),
                              header=str(body.get("header", "")))
    return json_response(ch, status=201)


async def create_direct(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    ids = await read_json(request, "user_ids", expect=list)
    if len(ids) != 2 or not all(is_valid_id(i) for i in ids):
        raise errors.invalid_body_param("user_ids")
    if me["id"] not in ids and not world.is_admin(me["id"]):
        raise errors.permissions("manage_system")
    for uid in ids:
        if uid not in world.users:
            raise AppError(400, "api.channel.create_direct_channel.invalid_user.app_error",
                           "Invalid user ID for direct channel creation.")
    ch, _ = world.direct_channel(ids[0], ids[1])
    return json_response(ch, status=201)


async def get_channel(request: web.Request) -> web.Response:
    return json_response(readable_channel(request, path_id(request, "channel_id")))


async def get_channel_by_name(request: web.Request) -> web.Response:
    return _channel_by_name(request, path_id(request, "team_id"))


def _channel_by_name(request: web.Request, tid: str) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    cid = world.channel_by_name.get((tid, request.match_info["channel_name"].lower()))
    ch = world.channels.get(cid) if cid else None
    # Mattermost answers 404 (not 403) so that private channel names do not leak.
    if ch is None or not world.can_read_channel(me["id"], ch) or (ch["delete_at"] and not flag(request, "include_deleted")):
        raise AppError(404, "app.channel.get_by_name.missing.app_error", "Channel does not exist.")
    return json_response(ch)


async def get_channel_by_team_name(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    tid = world.team_by_name.get(request.match_info["team_name"])
    if tid is None:
        raise AppError(404, "app.team.get_by_name.missing.app_error", "Unable to find the existing team.")
    return _channel_by_name(request, tid)


async def patch_channel(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    ch = world.channels.get(path_id(request, "channel_id"))
    if ch is None:
        raise errors.channel_missing()
    body = await read_json(request, "channel")
    if ch["type"] in ("D", "G"):
        if not world.is_member(ch["id"], me["id"]):
            raise errors.permissions("manage_private_channel_properties")
    elif not (world.is_member(ch["id"], me["id"]) or world.is_admin(me["id"])):
        raise errors.permissions("manage_public_channel_properties" if ch["type"] == "O"
                                 else "manage_private_channel_properties")
    return json_response(world.patch_channel(ch, body))


async def delete_channel(request: web.Request) -> web.Response:
    """Archive a channel; needs delete_public/private_channel (channel admins and system admins)."""
    world = request.app[SB_KEY].world
    me = caller(request)
    ch = world.channels.get(path_id(request, "channel_id"))
    if ch is None:
        raise errors.channel_missing()
    if ch["type"] in ("D", "G"):
        raise AppError(400, "api.channel.delete_channel.type.invalid", "Direct and group messages cannot be archived.")
    member = world.channel_members[ch["id"]].get(me["id"])
    is_channel_admin = bool(member and "channel_admin" in member.get("roles", "").split())
    if not (is_channel_admin or world.is_admin(me["id"])):
        raise errors.permissions("delete_public_channel" if ch["type"] == "O" else "delete_private_channel")
    world.archive_channel(ch, me["id"])
    return status_ok()


async def add_member(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    ch = world.channels.get(path_id(request, "channel_id"))
    body = await read_json(request, "user_id")
    uid = body.get("user_id", "")
    if not is_valid_id(uid):
        raise errors.invalid_body_param("user_id")
    if ch is None:
        raise errors.channel_missing()
    if ch["type"] in ("D", "G"):
        raise AppError(400, "api.channel.add_user_to_channel.type.app_error",
                       "Can not add user to this channel type.")
    if uid == me["id"] and ch["type"] == "O" and world.is_team_member(ch["team_id"], uid):
        pass  # join_public_channels
    elif not world.can_manage_members(me["id"], ch):
        raise errors.permissions("manage_public_channel_members" if ch["type"] == "O"
                                 else "manage_private_channel_members")
    if uid not in world.users:
        raise errors.user_missing()
    if not world.is_team_member(ch["team_id"], uid):
        raise AppError(400, "api.channel.add_user.to.channel.failed.deleted.app_error",
                       "Failed to add user to channel because they have been removed from the team.")
    member = world.add_member(ch, uid, me["id"], str(body.get("post_root_id", "") or ""))
    return json_response(member, status=201)


async def remove_member(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    ch = world.channels.get(path_id(request, "channel_id"))
    uid = user_path_id(request)
    if ch is None:
        raise errors.channel_missing()
    if ch["type"] in ("D", "G"):
        raise AppError(400, "api.channel.remove_user_from_channel.direct.app_error",
                       "Can not remove user from a direct or group message channel.")
    if uid != me["id"] and not world.can_manage_members(me["id"], ch):
        raise errors.permissions("manage_public_channel_members" if ch["type"] == "O"
                                 else "manage_private_channel_members")
    if uid != me["id"] and ch["type"] == "P" and not world.is_member(ch["id"], me["id"]) \
            and not world.is_admin(me["id"]):
        raise errors.permissions("manage_private_channel_members")
    if ch["name"] == "town-square":
        raise AppError(400, "api.channel.remove.default.app_error",
                       f"Unable to remove user from the default channel {ch['display_name']}.")
    if not world.is_member(ch["id"], uid):
        raise AppError(404, "app.channel.get_member.missing.app_error",
                       "No channel member found for that user ID and channel ID.")
    world.remove_member(ch, uid, me["id"])
    return status_ok()


async def get_members(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    ch = readable_channel(request, path_id(request, "channel_id"))
    page, per_page = paging(request)
    members = list(world.channel_members[ch["id"]].values())
    return json_response(members[page * per_page:(page + 1) * per_page])


async def get_member(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    ch = readable_channel(request, path_id(request, "channel_id"))
    member = world.channel_members[ch["id"]].get(user_path_id(request))
    if member is None:
        raise AppError(404, "app.channel.get_member.missing.app_error",
                       "No channel member found for that user ID and channel ID.")
    return json_response(member)


async def get_stats(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    ch = readable_channel(request, path_id(request, "channel_id"))
    stats = world.channel_stats(ch)
    if flag(request, "exclude_files_count"):
        stats["files_count"] = -1
    return json_response(stats)


async def get_pinned(request: web.Request) -> web.Response:
    ch = readable_channel(request, path_id(request, "channel_id"))
    return json_response(pinned_post_list(request.app[SB_KEY].world, ch["id"]))


async def get_channel_posts(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    ch = readable_channel(request, path_id(request, "channel_id"))
    include_deleted = flag(request, "include_deleted")
    if include_deleted and not world.is_admin(me["id"]):
        raise errors.permissions("manage_system")
    return json_response(channel_post_list(world, ch["id"], request.query, include_deleted))


async def channels_for_team_for_user(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    uid = user_path_id(request)
    tid = path_id(request, "team_id")
    if uid != me["id"] and not world.is_admin(me["id"]):
        raise errors.permissions("edit_other_users")
    if not world.is_team_member(tid, uid) and not world.is_admin(me["id"]):
        raise errors.permissions("view_team")
    include_deleted = flag(request, "include_deleted")
    result = [ch for ch in world.channels.values()
              if (ch["team_id"] == tid or ch["type"] in ("D", "G"))
              and uid in world.channel_members[ch["id"]]
              and (include_deleted or not ch["delete_at"])]
    return json_response(result)


async def public_channels_for_team(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    tid = path_id(request, "team_id")
    if not (world.is_team_member(tid, me["id"]) or world.is_admin(me["id"])):
        raise errors.permissions("list_team_channels")
    page, per_page = paging(request)
    result = sorted((ch for ch in world.channels.values()
                     if ch["team_id"] == tid and ch["type"] == "O" and not ch["delete_at"]),
                    key=lambda c: c["display_name"].lower())
    return json_response(result[page * per_page:(page + 1) * per_page])


def setup(app: web.Application) -> None:
    r = app.router
    uid = ID % "user_id"
    tid = ID % "team_id"
    r.add_post("/api/v4/channels", create_channel)
    r.add_post("/api/v4/channels/direct", create_direct)
    r.add_get(f"/api/v4/channels/{CID}", get_channel)
    r.add_put(f"/api/v4/channels/{CID}/patch", patch_channel)
    r.add_delete(f"/api/v4/channels/{CID}", delete_channel)
    r.add_get(f"/api/v4/channels/{CID}/members", get_members)
    r.add_post(f"/api/v4/channels/{CID}/members", add_member)
    r.add_get(f"/api/v4/channels/{CID}/members/{uid}", get_member)
    r.add_delete(f"/api/v4/channels/{CID}/members/{uid}", remove_member)
    r.add_get(f"/api/v4/channels/{CID}/stats", get_stats)
    r.add_get(f"/api/v4/channels/{CID}/pinned", get_pinned)
    r.add_get(f"/api/v4/channels/{CID}/posts", get_channel_posts)
    r.add_get(f"/api/v4/teams/{tid}/channels", public_channels_for_team)
    r.add_get(f"/api/v4/teams/{tid}/channels/name/{{channel_name}}", get_channel_by_name)
    r.add_get("/api/v4/teams/name/{team_name}/channels/name/{channel_name}", get_channel_by_team_name)
    r.add_get(f"/api/v4/users/{uid}/teams/{tid}/channels", channels_for_team_for_user)

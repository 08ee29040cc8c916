"""REST v4: channels and channel members."""

from __future__ import annotations

from aiohttp import web

from . import errors
from .errors import AppError
from .httputil import ID, caller, flag, json_response, paging, path_id, read_json, status_ok, user_path_id
from .ids import is_valid_id
from .keys import SB_KEY
from .posts_view import channel_post_list, pinned_post_list

CID = ID % "channel_id"


def readable_channel(request: web.Request, channel_id: str, permission: str = "read_channel") -> dict:
    """The channel if the caller may read its content; 404 if unknown, 403 otherwise.

    api4/channel.go ``getChannel`` (read_public_channel in the team or read_channel) and
    ``getPinnedPosts`` / api4/post.go ``getPostsForChannel`` (``SessionHasPermissionToReadChannel``):
    a public channel is readable by every team member, a private one by its members."""
    world = request.app[SB_KEY].world
    ch = world.channels.get(channel_id)
    if ch is None:
        raise errors.channel_missing()
    if not world.can_read_channel(caller(request)["id"], ch):
        raise errors.permissions(permission)
    return ch


def member_readable_channel(request: web.Request, channel_id: str) -> dict:
    """The channel if the caller has ``read_channel`` on it at channel scope, else 403 whether
    or not it exists (api4/channel.go ``getChannelMembers``, ``getChannelMember``,
    ``getChannelStats``): team_user does not grant it, so non-members of a public channel are refused."""
    world = request.app[SB_KEY].world
    ch = world.channels.get(channel_id)
    if not world.can_read_members(caller(request)["id"], ch):
        raise errors.permissions("read_channel")
    assert ch is not None
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
    # api4/channel.go createChannel: create_public/private_channel in the team (team_user has both).
    permission = "create_public_channel" if ctype == "O" else "create_private_channel"
    if not world.has_team_permission(team_id, me["id"], permission):
        raise errors.permissions(permission)
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
    # api4/channel.go createDirectChannel: create_direct_channel, and manage_system for a DM of others.
    if not world.has_system_permission(me["id"], "create_direct_channel"):
        raise errors.permissions("create_direct_channel")
    if me["id"] not in ids and not world.has_system_permission(me["id"], "manage_system"):
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
    missing = AppError(404, "app.channel.get_by_name.missing.app_error", "Channel does not exist.")
    if ch is None or (ch["delete_at"] and not flag(request, "include_deleted")):
        raise missing
    # api4/channel.go getChannelByName / getChannelByNameForTeamName: a public channel needs
    # read_public_channel in the team or read_channel (403 otherwise); a private one needs
    # read_channel or manage_team (team admins see every private channel by name), and is
    # answered 404 otherwise so that private channel names do not leak.
    if ch["type"] == "O":
        if not (world.has_team_permission(ch["team_id"], me["id"], "read_public_channel")
                or world.has_channel_permission(me["id"], ch, "read_channel")):
            raise errors.permissions("read_public_channel")
    elif not (world.has_channel_permission(me["id"], ch, "read_channel")
              or world.has_team_permission(ch["team_id"], me["id"], "manage_team")):
        raise missing
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
    # api4/channel.go patchChannel: manage_*_channel_properties at channel scope (channel_user
    # has both); a DM/GM only needs membership (api.channel.patch_update_channel.forbidden.app_error).
    if ch["type"] in ("D", "G"):
        if not world.is_member(ch["id"], me["id"]):
            raise AppError(403, "api.channel.patch_update_channel.forbidden.app_error",
                           "You do not have the appropriate permissions to update the channel.")
    else:
        permission = ("manage_public_channel_properties" if ch["type"] == "O"
                      else "manage_private_channel_properties")
        if not world.has_channel_permission(me["id"], ch, permission):
            raise errors.permissions(permission)
    return json_response(world.patch_channel(ch, body))


async def delete_channel(request: web.Request) -> web.Response:
    """Archive a channel: api4/channel.go deleteChannel, delete_public/private_channel at channel
    scope, which channel_user has by default (any member may archive)."""
    world = request.app[SB_KEY].world
    me = caller(request)
    ch = world.channels.get(path_id(request, "channel_id"))
    if ch is None:
        raise errors.channel_missing()
    if ch["type"] in ("D", "G"):
        raise AppError(400, "api.channel.delete_channel.type.invalid", "Direct and group messages cannot be archived.")
    permission = "delete_public_channel" if ch["type"] == "O" else "delete_private_channel"
    if not world.has_channel_permission(me["id"], ch, permission):
        raise errors.permissions(permission)
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
    # api4/channel.go addChannelMember: joining a public channel oneself needs join_public_channels
    # in the team; adding others to it manage_public_channel_members on the channel (members);
    # a private channel needs manage_private_channel_members on it (members) either way.
    if ch["type"] == "O" and uid == me["id"]:
        if not (world.is_member(ch["id"], uid)
                or world.has_team_permission(ch["team_id"], uid, "join_public_channels")):
            raise errors.permissions("join_public_channels")
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
    # api4/channel.go removeChannelMember: leaving needs nothing; removing someone else needs
    # manage_public/private_channel_members at channel scope (members and system admins).
    if uid != me["id"] and not world.can_manage_members(me["id"], ch):
        raise errors.permissions("manage_public_channel_members" if ch["type"] == "O"
                                 else "manage_private_channel_members")
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
    ch = member_readable_channel(request, path_id(request, "channel_id"))
    page, per_page = paging(request)
    members = list(world.channel_members[ch["id"]].values())
    return json_response(members[page * per_page:(page + 1) * per_page])


async def get_member(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    ch = member_readable_channel(request, path_id(request, "channel_id"))
    member = world.channel_members[ch["id"]].get(user_path_id(request))
    if member is None:
        raise AppError(404, "app.channel.get_member.missing.app_error",
                       "No channel member found for that user ID and channel ID.")
    return json_response(member)


async def get_stats(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    ch = member_readable_channel(request, path_id(request, "channel_id"))
    stats = world.channel_stats(ch)
    if flag(request, "exclude_files_count"):
        stats["files_count"] = -1
    return json_response(stats)


async def get_pinned(request: web.Request) -> web.Response:
    ch = readable_channel(request, path_id(request, "channel_id"), "read_channel_content")
    return json_response(pinned_post_list(request.app[SB_KEY].world, ch["id"]))


async def get_channel_posts(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    # api4/post.go getPostsForChannel: include_deleted is refused to non-admins before the lookup.
    channel_id = path_id(request, "channel_id")
    include_deleted = flag(request, "include_deleted")
    if include_deleted and not world.is_admin(me["id"]):
        raise errors.permissions("read_deleted_posts")
    ch = readable_channel(request, channel_id, "read_channel_content")
    return json_response(channel_post_list(world, ch["id"], request.query, include_deleted))


async def channels_for_team_for_user(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    uid = user_path_id(request)
    tid = path_id(request, "team_id")
    # api4/channel.go getChannelsForTeamForUser: edit_other_users for someone else (system admins
    # only), then view_team in the team for the caller.
    if uid != me["id"] and not world.has_system_permission(me["id"], "edit_other_users"):
        raise errors.permissions("edit_other_users")
    if not world.has_team_permission(tid, me["id"], "view_team"):
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
    # api4/channel.go getPublicChannelsForTeam: list_team_channels in the team.
    if not world.has_team_permission(tid, me["id"], "list_team_channels"):
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

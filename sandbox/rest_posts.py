"""REST v4: posts (incl. ephemeral, pins, threads) and reactions."""

from __future__ import annotations

import copy
import json
import re

from aiohttp import web

from . import errors
from .errors import AppError
from .httputil import ID, caller, flag, json_response, path_id, read_json, status_ok, user_path_id
from .ids import is_valid_id, now_ms
from .keys import SB_KEY
from .posts_view import thread_post_list

PID = ID % "post_id"
EMOJI_RE = re.compile(r"^[a-zA-Z0-9\-+_]{1,64}$")
TIME_LIMIT_ERROR = "api.post.update_post.permissions_time_limit.app_error"
PATCH_FIELDS = ("message", "props", "file_ids", "is_pinned", "has_reactions")


def _str_list(value: object, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.invalid_body_param(name)
    return value


def readable_post(request: web.Request, *, include_deleted: bool = False) -> dict:
    """The post if it exists (404) and the caller may read its channel (403): app/post.go
    ``GetPostIfAuthorized`` with ``SessionHasPermissionToReadChannel``."""
    world = request.app[SB_KEY].world
    me = caller(request)
    post = world.get_post(path_id(request, "post_id"), include_deleted=include_deleted)
    if not world.can_read_channel(me["id"], world.channels[post["channel_id"]]):
        raise errors.permissions("read_channel_content")
    return post


def _editable_post(request: web.Request) -> dict:
    """api4/post.go ``updatePost`` / ``patchPost`` (``postPatchChecks``): an unknown post is 403
    edit_post; edit_post on the channel for one's own post (members), edit_others_posts for
    anyone else's (only system admins by default — team admins do not have it)."""
    world = request.app[SB_KEY].world
    me = caller(request)
    post = world.posts.get(path_id(request, "post_id"))
    if post is None or post["delete_at"]:
        raise errors.permissions("edit_post")
    permission = "edit_post" if post["user_id"] == me["id"] else "edit_others_posts"
    if not world.has_channel_permission(me["id"], world.channels[post["channel_id"]], permission):
        raise errors.permissions(permission)
    return post


def _deletable_post(request: web.Request) -> dict:
    """api4/post.go ``deletePost``: 404 for an unknown post; delete_post (channel members, team
    admins) for one's own, delete_others_posts (team admins, system admins) for anyone else's."""
    world = request.app[SB_KEY].world
    me = caller(request)
    post = world.get_post(path_id(request, "post_id"))
    permission = "delete_post" if post["user_id"] == me["id"] else "delete_others_posts"
    if not world.has_channel_permission(me["id"], world.channels[post["channel_id"]], permission):
        raise errors.permissions(permission)
    return post


def _check_file_ids(world, me: dict, ch: dict, file_ids: list[str]) -> None:
    """api4/post.go ``createPostChecks``: attaching files needs upload_file on the channel."""
    if file_ids and not world.has_channel_permission(me["id"], ch, "upload_file"):
        raise errors.permissions("upload_file")


# ---------------------------------------------------------------------- ServiceSettings.PostEditTimeLimit
# Modelled on the strictest supported release (v11.7 and later, mattermost/mattermost PR #35638):
# once the window has passed, api4/post.go `updatePost` refuses any change of message, file_ids,
# props or is_pinned, `postPatchChecks` (patchPost) refuses any non-empty patch, and
# `saveIsPinnedPost` (pin/unpin) refuses unless the call changes nothing. Older releases limited
# only `message`. The check lives in the REST handlers only: app/post.go `UpdatePost` has none, so an
# interactive action's `update` (app/integration_action.go `DoPostActionWithCookie` → `UpdatePost`)
# and reactions (`saveReaction`) are never limited; neither is `deletePost`. No role is exempt.
def edit_window_closed(world, post: dict) -> bool:
    """``postEditTimeLimitExpired``: -1 never expires; otherwise once now > create_at + limit seconds."""
    limit = world.post_edit_time_limit
    return limit != -1 and now_ms() > post["create_at"] + limit * 1000


def time_limit_error(world) -> AppError:
    limit = world.post_edit_time_limit
    return AppError(400, TIME_LIMIT_ERROR,
                    f"This post can no longer be changed: posts may be edited for {limit} seconds after posting.")


def stored_props(world, post: dict) -> dict:
    """The props as Mattermost keeps them in the database: action integrations inside their actions."""
    props = copy.deepcopy(post.get("props") or {})
    integrations = world.action_integrations.get(post["id"], {})
    attachments = props.get("attachments")
    for att in attachments if isinstance(attachments, list) else []:
        for action in (att.get("actions") or []) if isinstance(att, dict) else []:
            if isinstance(action, dict) and str(action.get("id")) in integrations:
                action["integration"] = integrations[str(action["id"])]
    return props


def _same_json(a: object, b: object) -> bool:
    # Go compares StringInterfaceToJSON of both maps; its map keys are marshalled sorted.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _check_update_window(world, post: dict, body: dict) -> None:
    """``updatePost``: after the window, the body must leave message, file_ids, props and is_pinned as they are."""
    if not edit_window_closed(world, post):
        return
    props = body.get("props") if isinstance(body.get("props"), dict) else stored_props(world, post)
    given_files = body.get("file_ids")
    file_ids = given_files if given_files is not None else post.get("file_ids", [])
    if (body.get("message", "") != post["message"] or list(file_ids) != list(post.get("file_ids", []))
            or not _same_json(props, stored_props(world, post))
            or bool(body.get("is_pinned", False)) != post["is_pinned"]):
        raise time_limit_error(world)


def _check_patch_window(world, post: dict, body: dict) -> None:
    """``postPatchChecks``: after the window only an empty patch (every field null or absent) passes."""
    if edit_window_closed(world, post) and any(body.get(name) is not None for name in PATCH_FIELDS):
        raise time_limit_error(world)


async def create_post(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    body = await read_json(request, "post")
    channel_id = body.get("channel_id")
    if not is_valid_id(channel_id):
        raise errors.invalid_body_param("channel_id")
    message = body.get("message", "")
    if not isinstance(message, str):
        raise errors.invalid_body_param("post")
    ptype = body.get("type", "") or ""
    if not isinstance(ptype, str) or ptype.startswith("system_"):
        raise AppError(400, "api.context.invalid_param.app_error", "Invalid type parameter.")
    # api4/post_utils.go userCreatePostPermissionCheckWithContext: 403 alike for a missing channel.
    ch = world.channels.get(channel_id)
    if ch is None or not world.can_post(me["id"], ch):
        raise errors.permissions("create_post")
    file_ids = _str_list(body.get("file_ids"), "file_ids")
    _check_file_ids(world, me, ch, file_ids)
    props = body.get("props") if isinstance(body.get("props"), dict) else {}
    root_id = body.get("root_id", "") or ""
    if root_id and not is_valid_id(root_id):
        raise errors.invalid_body_param("root_id")
    pending_post_id = str(body.get("pending_post_id", "") or "")
    pending = request.app[SB_KEY].pending_posts
    earlier = pending.claim(pending_post_id)
    if earlier == "":
        raise AppError(500, "api.post.deduplicate_create_post.pending", "Post rejected by server: still being processed.")
    if earlier:
        existing = world.posts.get(earlier)
        if existing is None or existing["delete_at"]:
            raise AppError(500, "api.post.deduplicate_create_post.failed_to_get", "Failed to get the existing post.")
        if world.can_read_channel(me["id"], world.channels[existing["channel_id"]]):
            # Read back from the database: no pending_post_id, no metadata, and no new event.
            served = {k: v for k, v in existing.items() if k != "metadata"}
            return json_response({**served, "pending_post_id": ""}, status=201)
        # A post the caller cannot read is not theirs to get back: Mattermost makes a new one.
    try:
        post = world.create_post(user_id=me["id"], channel_id=channel_id, message=message,
                                 root_id=root_id, props=props, file_ids=file_ids, type=ptype,
                                 pending_post_id=pending_post_id)
    except Exception:
        pending.failed(pending_post_id)
        raise
    pending.saved(pending_post_id, post["id"])
    return json_response(post, status=201)


async def create_ephemeral(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    body = await read_json(request, "ephemeral_post")
    # api4/post.go createEphemeralPost: create_post_ephemeral is a system permission (system admins).
    if not world.has_system_permission(me["id"], "create_post_ephemeral"):
        raise errors.permissions("create_post_ephemeral")
    target = body.get("user_id", "")
    post = body.get("post")
    if not is_valid_id(target):
        raise errors.invalid_body_param("user_id")
    if not isinstance(post, dict) or not is_valid_id(post.get("channel_id")):
        raise errors.invalid_body_param("channel_id")
    if post["channel_id"] not in world.channels:
        raise errors.permissions("create_post")
    sent = world.send_ephemeral(target_user_id=target, channel_id=post["channel_id"],
                                message=str(post.get("message", "")), author_id=me["id"],
                                root_id=str(post.get("root_id", "") or ""), props=post.get("props"))
    return json_response(sent, status=201)


async def get_post(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    include_deleted = flag(request, "include_deleted")
    if include_deleted and not world.is_admin(caller(request)["id"]):
        raise errors.permissions("manage_system")
    return json_response(readable_post(request, include_deleted=include_deleted))


async def update_post(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    caller(request)
    body = await read_json(request, "post")
    if body.get("id") != request.match_info["post_id"]:
        raise errors.invalid_body_param("id")
    post = _editable_post(request)
    message = body.get("message", "")
    if not isinstance(message, str):
        raise errors.invalid_body_param("post")
    _check_update_window(world, post, body)
    props = body.get("props") if isinstance(body.get("props"), dict) else {}
    file_ids = _str_list(body.get("file_ids"), "file_ids") if "file_ids" in body else None
    kwargs = {}
    if "is_pinned" in body:
        kwargs["is_pinned"] = bool(body["is_pinned"])
    updated = world.edit_post(post, message=message, props=props, file_ids=file_ids,
                              edited=message != post["message"], **kwargs)
    return json_response(updated)


async def patch_post(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    caller(request)
    body = await read_json(request, "post")
    post = _editable_post(request)
    message = body.get("message")
    if message is not None and not isinstance(message, str):
        raise errors.invalid_body_param("post")
    props = body.get("props")
    if props is not None and not isinstance(props, dict):
        raise errors.invalid_body_param("post")
    file_ids = _str_list(body.get("file_ids"), "file_ids") if "file_ids" in body else None
    _check_patch_window(world, post, body)
    updated = world.edit_post(post, message=message, props=props, file_ids=file_ids,
                              is_pinned=body.get("is_pinned"), has_reactions=body.get("has_reactions"),
                              edited=message is not None and message != post["message"])
    return json_response(updated)


async def delete_post(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    post = _deletable_post(request)
    world.delete_post(post, me["id"])
    return status_ok()


async def get_thread(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    post = readable_post(request)
    return json_response(thread_post_list(world, post["root_id"] or post["id"]))


async def _set_pinned(request: web.Request, pinned: bool) -> web.Response:
    """api4/post.go ``saveIsPinnedPost``: an unknown post is 403, and pinning needs only read
    access to the channel (``SessionHasPermissionToReadChannel``), as the server has it."""
    world = request.app[SB_KEY].world
    me = caller(request)
    post = world.posts.get(path_id(request, "post_id"))
    if post is None or post["delete_at"] or not world.can_read_channel(me["id"], world.channels[post["channel_id"]]):
        raise errors.permissions("read_channel_content")
    if post["is_pinned"] != pinned:
        if edit_window_closed(world, post):  # `saveIsPinnedPost`: only a no-op escapes the limit
            raise time_limit_error(world)
        world.edit_post(post, is_pinned=pinned, edited=False)
    return status_ok()


async def pin(request: web.Request) -> web.Response:
    return await _set_pinned(request, True)


async def unpin(request: web.Request) -> web.Response:
    return await _set_pinned(request, False)


async def post_files_info(request: web.Request) -> web.Response:
    """api4/post.go ``getFileInfosForPost``: ``SessionHasPermissionToReadPost``, 403 for an unknown post too."""
    world = request.app[SB_KEY].world
    me = caller(request)
    post = world.posts.get(path_id(request, "post_id"))
    if post is None or not world.can_read_channel(me["id"], world.channels[post["channel_id"]]):
        raise errors.permissions("read_channel_content")
    if post["delete_at"]:
        raise errors.post_missing()
    return json_response([world.files[f][0] for f in post.get("file_ids", []) if f in world.files])


async def posts_by_ids(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    ids = await read_json(request, "post_ids", expect=list)
    if not ids or not all(is_valid_id(i) for i in ids):
        raise errors.invalid_body_param("post_ids")
    # api4/post.go getPostsByIds: posts the caller may not read are left out, not refused.
    result = []
    for pid in dict.fromkeys(ids):
        post = world.posts.get(pid)
        if post and not post["delete_at"] and world.can_read_channel(me["id"], world.channels[post["channel_id"]]):
            result.append(post)
    return json_response(result)


# ---------------------------------------------------------------------- reactions
async def save_reaction(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    body = await read_json(request, "reaction")
    if not is_valid_id(body.get("user_id")):
        raise errors.invalid_body_param("user_id")
    if not is_valid_id(body.get("post_id")):
        raise errors.invalid_body_param("post_id")
    emoji = body.get("emoji_name")
    if not isinstance(emoji, str) or not EMOJI_RE.match(emoji):
        raise errors.invalid_body_param("emoji_name")
    # api4/reaction.go saveReaction: someone else's reaction is its own 403; then add_reaction via
    # SessionHasPermissionToChannelByPost (channel members; team roles lack it; 403 for unknown posts).
    if body["user_id"] != me["id"]:
        raise AppError(403, "api.reaction.save_reaction.user_id.app_error",
                       "You cannot save reaction for the other user.")
    post = world.posts.get(body["post_id"])
    if not world.has_channel_permission(me["id"], world.channels[post["channel_id"]] if post else None,
                                        "add_reaction"):
        raise errors.permissions("add_reaction")
    assert post is not None  # an unknown post has no channel permission
    if post["delete_at"]:
        raise AppError(400, "app.reaction.save.save.app_error", "Unable to save reaction.")
    return json_response(world.add_reaction(post, me["id"], emoji), status=201)


async def delete_reaction(request: web.Request) -> web.Response:
    world = request.app[SB_KEY].world
    me = caller(request)
    uid = user_path_id(request)
    post = world.posts.get(path_id(request, "post_id"))
    emoji = request.match_info["emoji_name"]
    if not EMOJI_RE.match(emoji):
        raise errors.invalid_url_param("emoji_name")
    # api4/reaction.go deleteReaction: remove_reaction by post first, then remove_others_reactions
    # (a system permission) for someone else's.
    if not world.has_channel_permission(me["id"], world.channels[post["channel_id"]] if post else None,
                                        "remove_reaction"):
        raise errors.permissions("remove_reaction")
    assert post is not None  # an unknown post has no channel permission
    if uid != me["id"] and not world.has_system_permission(me["id"], "remove_others_reactions"):
        raise errors.permissions("remove_others_reactions")
    world.remove_reaction(post, uid, emoji)
    return status_ok()


async def list_reactions(request: web.Request) -> web.Response:
    """api4/reaction.go ``getReactions``: read_channel_content via SessionHasPermissionToChannelByPost —
    channel scope, so unlike the posts themselves a public channel's non-members are refused."""
    world = request.app[SB_KEY].world
    me = caller(request)
    post = world.posts.get(path_id(request, "post_id"))
    if not world.has_channel_permission(me["id"], world.channels[post["channel_id"]] if post else None,
                                        "read_channel_content"):
        raise errors.permissions("read_channel_content")
    return json_response(world.reactions.get(post["id"], []) if post else [])


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v4/posts", create_post)
    r.add_post("/api/v4/posts/ephemeral", create_ephemeral)
    r.add_post("/api/v4/posts/ids", posts_by_ids)
    r.add_get(f"/api/v4/posts/{PID}", get_post)
    r.add_put(f"/api/v4/posts/{PID}", update_post)
    r.add_delete(f"/api/v4/posts/{PID}", delete_post)
    r.add_put(f"/api/v4/posts/{PID}/patch", patch_post)
    r.add_get(f"/api/v4/posts/{PID}/thread", get_thread)
    r.add_post(f"/api/v4/posts/{PID}/pin", pin)
    r.add_post(f"/api/v4/posts/{PID}/unpin", unpin)
    r.add_get(f"/api/v4/posts/{PID}/files/info", post_files_info)
    r.add_get(f"/api/v4/posts/{PID}/reactions", list_reactions)
    r.add_post("/api/v4/reactions", save_reaction)
    r.add_delete(f"/api/v4/users/{ID % 'user_id'}/posts/{PID}/reactions/{{emoji_name}}", delete_reaction)

"""Interactive message buttons and menus: ``POST /posts/{id}/actions/{action_id}``.

Mirrors api4/integration_action.go ``doPostAction`` (who may click) and
app/integration_action.go ``DoPostActionWithCookie`` (the payload sent to the action's
integration, its ``update`` and ``ephemeral_text``; ephemeral posts clicked through their cookie),
with app/post.go ``UpdatePost``'s prop retention — protocol.md §2.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING

from aiohttp import web

from . import errors
from .errors import AppError
from .httputil import ID, caller, json_response, path_id, read_json
from .ids import now_ms
from .keys import SB_KEY
from .outbound import action_failed, call_integration, integration_answer, process_attachments, slack_to_markdown
from .state import RETAINED_PROPS
from .trigger_ids import issue_trigger_id

if TYPE_CHECKING:  # the Sandbox is handed in; app.py imports this module
    from .app import Sandbox


def find_action(props: dict, action_id: str) -> dict | None:
    for att in props.get("attachments") or []:
        if isinstance(att, dict):
            for action in att.get("actions") or []:
                if isinstance(action, dict) and str(action.get("id")) == action_id:
                    return action
    return None


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
    given_context = integration.get("context")
    context: dict = copy.deepcopy(given_context) if isinstance(given_context, dict) else {}
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
    resp = integration_answer(record)
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


def setup(app: web.Application) -> None:
    app.router.add_post(f"/api/v4/posts/{ID % 'post_id'}/actions/{ID % 'action_id'}", do_post_action)

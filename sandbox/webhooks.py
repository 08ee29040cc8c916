"""Incoming webhooks: ``POST /hooks/{id}`` posts a JSON (or form ``payload``) message.

Mirrors web/webhook.go ``incomingWebhook`` and app/webhook.go ``HandleIncomingWebhook`` /
``CreateWebhookPost`` (channel choice, locked hooks, identity props, attachments). Outgoing
webhooks are not modelled (sandbox/README.md, "Known simplifications").
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from aiohttp import web

from .errors import AppError
from .keys import SB_KEY
from .outbound import process_attachments, slack_to_markdown
from .state import World

if TYPE_CHECKING:  # the Sandbox is handed in; app.py imports this module
    from .app import Sandbox


def _webhook_channel(world: World, hook: dict, name: str) -> dict:
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


def _webhook_props(sb: Sandbox, hook: dict, data: dict) -> dict:
    """The props of an incoming-webhook post as app/webhook.go sets them.

    HandleIncomingWebhook adds ``webhook_display_name`` (the hook's display name, even empty);
    CreateWebhookPost adds ``from_webhook``, ``override_username`` (payload, else hook, else
    "webhook") only with ``EnablePostUsernameOverride``, ``override_icon_url`` (payload
    ``icon_emoji``, else ``icon_url``, else the hook's) only with ``EnablePostIconOverride``, and
    copies the payload's other props; the payload cannot set those reserved keys itself, and a
    props ``attachments`` is not taken (only top-level ``attachments`` are).
    """
    raw = data.get("props")
    given: dict = raw if isinstance(raw, dict) else {}
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


def setup(app: web.Application) -> None:
    app.router.add_post("/hooks/{hook_id}", incoming_webhook)

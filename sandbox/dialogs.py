"""Interactive dialogs: ``POST /actions/dialogs/open`` and ``/actions/dialogs/submit``.

Mirrors api4/integration_action.go ``openDialog`` / ``submitDialog`` and app/integration_action.go
``OpenInteractiveDialog`` (a trigger id redeemed, an ``open_dialog`` event to its user) and
``SubmitInteractiveDialog`` (the submission or cancel notification sent to the dialog's url, its
SubmitDialogResponse relayed) — protocol.md §3.
"""

from __future__ import annotations

import json

from aiohttp import web

from . import errors
from .httputil import caller, json_response, read_json, status_ok
from .keys import SB_KEY
from .outbound import call_integration, integration_answer
from .trigger_ids import decode_trigger_id


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
    resp = integration_answer(record)
    out = {k: v for k, v in resp.items() if k in ("error", "errors", "type", "form") and v}
    return json_response(out)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v4/actions/dialogs/open", open_dialog)
    app.router.add_post("/api/v4/actions/dialogs/submit", submit_dialog)

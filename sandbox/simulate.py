"""Simulated people: SimUser drives the real REST API with a user's token, like a web client.

Events addressed to the user (ephemeral posts, dialogs) reach a SimUser through an
in-process subscription, delivered synchronously when they happen, so every result
already carries what the integration did before it answered the callback.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from .errors import AppError
from .httputil import json_response
from .ids import clock_offset_ms
from .keys import SB_KEY
from .state import Event

if TYPE_CHECKING:  # the Sandbox is handed in; app.py imports this module
    from .app import Sandbox


class SandboxHTTPError(Exception):
    """A simulated client call that Mattermost answered with an error status."""

    def __init__(self, status: int, error: Any) -> None:
        super().__init__(f"HTTP {status}: {error}")
        self.status = status
        self.error = error


@dataclass
class CommandResult:
    """Outcome of ``SimUser.command``."""

    status: int
    response: dict | None = None
    error: dict | None = None
    ephemeral: list[str] = field(default_factory=list)
    goto_location: str | None = None
    dialog: dict | None = None


@dataclass
class ActionResult:
    """Outcome of ``SimUser.click`` / ``SimUser.select``; ``post`` is set when the click updated it."""

    status: int
    error: dict | None = None
    ephemeral: list[str] = field(default_factory=list)
    dialog: dict | None = None
    post: dict | None = None


@dataclass
class DialogResult:
    """Outcome of ``SimUser.submit_dialog`` / ``SimUser.cancel_dialog``."""

    status: int
    errors: dict | None = None
    error: str | None = None
    closed: bool = False


class SimUser:
    """A person using a Mattermost client, acting through the sandbox's REST API."""

    def __init__(self, sb: Sandbox, username: str) -> None:
        self.sb = sb
        self.username = username
        self.id = sb.user_id(username)
        self.token = sb.token_of(username)
        self.dialog: dict | None = None
        self._dialog_channel = ""
        self._current_channel = ""
        self._ephemeral: list[dict] = []
        self._dialogs: list[dict] = []
        self._session: aiohttp.ClientSession | None = None
        self._unsubscribe = sb.world.subscribe(self.id, self._on_event)

    # ------------------------------------------------------------------ plumbing
    def _on_event(self, ev: Event) -> None:
        if ev.event == "ephemeral_message":
            self._ephemeral.append(json.loads(ev.data["post"]))
        elif ev.event == "post_edited" and ev.broadcast.get("user_id") == self.id:
            # An ephemeral post updated by a click: replace this user's copy.
            edited = json.loads(ev.data["post"])
            for index, known in enumerate(self._ephemeral):
                if known["id"] == edited["id"]:
                    self._ephemeral[index] = edited
        elif ev.event == "open_dialog":
            dialog = json.loads(ev.data["dialog"])
            self.dialog = dialog
            self._dialog_channel = self._current_channel
            self._dialogs.append(dialog)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str, *, json_body: Any = None,
                       data: Any = None) -> tuple[int, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}",
                                                           "X-Requested-With": "XMLHttpRequest"})
        async with self._session.request(method, self.sb.url + path, json=json_body, data=data) as resp:
            raw = await resp.read()
            body: Any = raw
            if resp.content_type == "application/json" and raw:
                body = json.loads(raw)
            return resp.status, body

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        status, body = await self._request(method, path, **kw)
        if status >= 300:
            raise SandboxHTTPError(status, body)
        return body

    def _resolve_sync(self, channel: str) -> str | None:
        world = self.sb.world
        if channel in world.channels:
            return channel
        if channel.startswith("@"):
            other = world.user_by_name.get(channel[1:])
            return world.channel_by_name.get(("", "__".join(sorted((self.id, other))))) if other else None
        if "/" in channel:
            team, _, name = channel.partition("/")
            return world.channel_by_name.get((world.team_by_name.get(team, ""), name))
        for tid in world.team_members:
            if self.id in world.team_members[tid]:
                return world.channel_by_name.get((tid, channel))
        return None

    async def _resolve(self, channel: str) -> str:
        if channel.startswith("@"):
            return await self.dm_channel(channel[1:])
        cid = self._resolve_sync(channel)
        if cid is None:
            raise ValueError(f"unknown channel {channel!r} for {self.username}")
        return cid

    def _texts_since(self, mark: int, channel_id: str) -> list[str]:
        return [p["message"] for p in self._ephemeral[mark:] if p["channel_id"] == channel_id]

    # ------------------------------------------------------------------ actions
    async def post(self, channel: str, message: str, *, root_id: str = "",
                   files: list[tuple[str, bytes]] | None = None) -> dict:
        """Post a message (optionally with files) and return the created Post."""
        cid = await self._resolve(channel)
        file_ids = [(await self.upload(cid, name, data))["id"] for name, data in files or []]
        body: dict[str, Any] = {"channel_id": cid, "message": message, "root_id": root_id}
        if file_ids:
            body["file_ids"] = file_ids
        return await self._call("POST", "/api/v4/posts", json_body=body)

    async def command(self, channel: str, text: str) -> CommandResult:
        """Type a slash command (``/trigger args``) in a channel via POST /commands/execute."""
        cid = await self._resolve(channel)
        ch = self.sb.world.channels[cid]
        mark, dmark = len(self._ephemeral), len(self._dialogs)
        self._current_channel = cid
        team_id = ch["team_id"] or next((t for t, m in self.sb.world.team_members.items() if self.id in m), "")
        status, body = await self._request("POST", "/api/v4/commands/execute",
                                           json_body={"channel_id": cid, "command": text, "team_id": team_id})
        ok = status == 200 and isinstance(body, dict)
        return CommandResult(
            status=status, response=body if ok else None,
            error=body if not ok and isinstance(body, dict) else None,
            ephemeral=self._texts_since(mark, cid),
            goto_location=(body.get("goto_location") or None) if ok else None,
            dialog=self._dialogs[-1] if len(self._dialogs) > dmark else None)

    async def _find_action(self, post_id: str, action: str) -> tuple[dict, dict, bool]:
        status, post = await self._request("GET", f"/api/v4/posts/{post_id}")
        ephemeral = False
        if status != 200:
            post = next((p for p in reversed(self._ephemeral) if p["id"] == post_id), None)
            if post is None:
                raise SandboxHTTPError(status, "post not found for this user")
            ephemeral = True
        for att in (post.get("props") or {}).get("attachments") or []:
            for act in att.get("actions") or []:
                if str(act.get("id")) == action or act.get("name") == action:
                    return post, act, ephemeral
        raise ValueError(f"post {post_id} has no action {action!r}")

    async def _act(self, post_id: str, action: str, selected: str | None) -> ActionResult:
        post, act, ephemeral = await self._find_action(post_id, action)
        cid = post["channel_id"]
        mark, dmark = len(self._ephemeral), len(self._dialogs)
        self._current_channel = cid
        body: dict[str, Any] = {}
        if selected is not None:
            body["selected_option"] = selected
        if ephemeral and act.get("cookie"):
            body["cookie"] = act["cookie"]
        status, resp = await self._request("POST", f"/api/v4/posts/{post_id}/actions/{act['id']}",
                                           json_body=body)
        updated = None
        if status == 200 and not ephemeral:
            now = self.sb.world.posts.get(post_id)
            if now is not None and now["update_at"] != post["update_at"]:
                st, fetched = await self._request("GET", f"/api/v4/posts/{post_id}")
                updated = fetched if st == 200 else None
        return ActionResult(status=status, error=resp if status != 200 and isinstance(resp, dict) else None,
                            ephemeral=self._texts_since(mark, cid),
                            dialog=self._dialogs[-1] if len(self._dialogs) > dmark else None,
                            post=updated)

    async def click(self, post_id: str, action: str) -> ActionResult:
        """Click a button, identified by action id or by its label."""
        return await self._act(post_id, action, None)

    async def select(self, post_id: str, action: str, value: str) -> ActionResult:
        """Choose ``value`` in a message menu (action id or placeholder name)."""
        return await self._act(post_id, action, value)

    async def submit_dialog(self, submission: dict) -> DialogResult:
        """Submit the open dialog with ``submission`` (element name -> value)."""
        if self.dialog is None:
            raise RuntimeError(f"{self.username} has no open dialog")
        return await self._send_dialog(submission, cancelled=False)

    async def cancel_dialog(self) -> DialogResult:
        """Close the dialog; the integration hears of it only if ``notify_on_cancel`` is set."""
        if self.dialog is None:
            raise RuntimeError(f"{self.username} has no open dialog")
        if not self.dialog.get("dialog", {}).get("notify_on_cancel"):
            self.dialog = None
            return DialogResult(status=200, closed=True)
        return await self._send_dialog(None, cancelled=True)

    async def _send_dialog(self, submission: dict | None, *, cancelled: bool) -> DialogResult:
        assert self.dialog is not None
        d = self.dialog
        cid = self._dialog_channel or self._current_channel
        ch = self.sb.world.channels.get(cid, {})
        body = {"url": d["url"], "callback_id": d["dialog"].get("callback_id", ""),
                "state": d["dialog"].get("state", ""), "channel_id": cid,
                "team_id": ch.get("team_id", ""), "submission": submission, "cancelled": cancelled}
        status, resp = await self._request("POST", "/api/v4/actions/dialogs/submit", json_body=body)
        if status != 200:
            message = resp.get("message") if isinstance(resp, dict) else str(resp)
            return DialogResult(status=status, error=message, closed=False)
        resp = resp if isinstance(resp, dict) else {}
        errs, err = resp.get("errors") or None, resp.get("error") or None
        closed = cancelled or not (errs or err)
        if resp.get("type") == "form" and isinstance(resp.get("form"), dict) and not cancelled:
            self.dialog = dict(d, dialog=resp["form"])
            closed = False
        elif closed:
            self.dialog = None
        return DialogResult(status=status, errors=errs, error=err, closed=closed)

    async def react(self, post_id: str, emoji: str) -> dict:
        return await self._call("POST", "/api/v4/reactions",
                                json_body={"user_id": self.id, "post_id": post_id, "emoji_name": emoji})

    async def unreact(self, post_id: str, emoji: str) -> None:
        await self._call("DELETE", f"/api/v4/users/{self.id}/posts/{post_id}/reactions/{emoji}")

    async def read_channel(self, channel: str, *, include_ephemeral: bool = True) -> list[dict]:
        """The channel's posts oldest first, with this user's ephemeral posts interleaved."""
        cid = await self._resolve(channel)
        posts: list[dict] = []
        page = 0
        while True:
            plist = await self._call("GET", f"/api/v4/channels/{cid}/posts?page={page}&per_page=200")
            posts += [plist["posts"][pid] for pid in plist["order"]]
            if len(plist["order"]) < 200:
                break
            page += 1
        posts.reverse()
        if include_ephemeral:
            posts += [p for p in self._ephemeral if p["channel_id"] == cid]
            posts.sort(key=lambda p: p["create_at"])
        return posts

    def ephemeral(self, channel: str | None = None) -> list[dict]:
        """Ephemeral posts this user received (optionally only in one channel)."""
        if channel is None:
            return list(self._ephemeral)
        cid = self._resolve_sync(channel)
        return [p for p in self._ephemeral if p["channel_id"] == cid]

    async def dm_channel(self, other_username: str) -> str:
        other = self.sb.user_id(other_username)
        ch = await self._call("POST", "/api/v4/channels/direct", json_body=[self.id, other])
        return ch["id"]

    async def add_member(self, channel: str, username: str) -> dict:
        """Add someone to a channel, as the web client's "Add members" (or /invite) does."""
        cid = await self._resolve(channel)
        return await self._call("POST", f"/api/v4/channels/{cid}/members",
                                json_body={"user_id": self.sb.user_id(username)})

    async def upload(self, channel: str, filename: str, data: bytes) -> dict:
        cid = await self._resolve(channel)
        form = aiohttp.FormData()
        form.add_field("channel_id", cid)
        form.add_field("files", data, filename=filename, content_type="application/octet-stream")
        result = await self._call("POST", "/api/v4/files", data=form)
        return result["file_infos"][0]


# ---------------------------------------------------------------------- /_sandbox HTTP API
def _result(obj: Any) -> web.Response:
    return json_response(dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) and not isinstance(obj, type) else obj)


def _sim(request: web.Request) -> SimUser:
    sb = request.app[SB_KEY]
    name = request.match_info["username"]
    if name not in sb.world.user_by_name:
        raise AppError(404, "app.user.missing_account.const", "Unable to find the user.")
    return sb.user(name)


async def _body(request: web.Request) -> dict:
    raw = await request.read()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise AppError(400, "api.context.invalid_body_param.app_error", "Invalid or missing body.") from None
    if not isinstance(data, dict):
        raise AppError(400, "api.context.invalid_body_param.app_error", "Invalid or missing body.")
    return data


def _wrap(fn):
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await fn(request)
        except SandboxHTTPError as exc:
            return json_response(exc.error if isinstance(exc.error, dict) else {"message": str(exc.error)},
                                 status=exc.status)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise AppError(400, "sandbox.simulation.app_error", str(exc)) from None
    return handler


async def sim_users(request: web.Request) -> web.Response:
    sb = request.app[SB_KEY]
    return json_response([{"username": u["username"], "id": u["id"], "token": sb.token_of(u["username"]),
                           "is_bot": bool(u.get("is_bot"))} for u in sb.world.users.values()])


async def sim_post(request: web.Request) -> web.Response:
    b = await _body(request)
    files = [(f["filename"], base64.b64decode(f["data_base64"])) for f in b.get("files") or []]
    return json_response(await _sim(request).post(b["channel"], b.get("message", ""),
                                                  root_id=b.get("root_id", ""), files=files or None))


async def sim_command(request: web.Request) -> web.Response:
    b = await _body(request)
    return _result(await _sim(request).command(b["channel"], b["text"]))


async def sim_click(request: web.Request) -> web.Response:
    b = await _body(request)
    return _result(await _sim(request).click(b["post_id"], b["action"]))


async def sim_select(request: web.Request) -> web.Response:
    b = await _body(request)
    return _result(await _sim(request).select(b["post_id"], b["action"], b["value"]))


async def sim_dialog(request: web.Request) -> web.Response:
    return json_response({"dialog": _sim(request).dialog})


async def sim_submit(request: web.Request) -> web.Response:
    b = await _body(request)
    return _result(await _sim(request).submit_dialog(b.get("submission") or {}))


async def sim_cancel(request: web.Request) -> web.Response:
    return _result(await _sim(request).cancel_dialog())


async def sim_react(request: web.Request) -> web.Response:
    b = await _body(request)
    return json_response(await _sim(request).react(b["post_id"], b["emoji"]))


async def sim_unreact(request: web.Request) -> web.Response:
    b = await _body(request)
    await _sim(request).unreact(b["post_id"], b["emoji"])
    return json_response({"status": "OK"})


async def sim_read(request: web.Request) -> web.Response:
    include = request.query.get("include_ephemeral", "true").lower() != "false"
    return json_response(await _sim(request).read_channel(request.query["channel"], include_ephemeral=include))


async def sim_ephemeral(request: web.Request) -> web.Response:
    return json_response(_sim(request).ephemeral(request.query.get("channel")))


async def sim_dm(request: web.Request) -> web.Response:
    b = await _body(request)
    return json_response({"channel_id": await _sim(request).dm_channel(b["username"])})


async def sim_upload(request: web.Request) -> web.Response:
    b = await _body(request)
    return json_response(await _sim(request).upload(b["channel"], b["filename"],
                                                    base64.b64decode(b["data_base64"])))


async def state_posts(request: web.Request) -> web.Response:
    sb = request.app[SB_KEY]
    include = request.query.get("include_deleted", "").lower() == "true"
    return json_response(sb.posts(request.match_info["channel_id"], include_deleted=include))


async def state_pinned(request: web.Request) -> web.Response:
    return json_response(request.app[SB_KEY].pinned(request.match_info["channel_id"]))


async def state_members(request: web.Request) -> web.Response:
    return json_response(sorted(request.app[SB_KEY].channel_members(request.match_info["channel_id"])))


async def state_channel(request: web.Request) -> web.Response:
    ch = request.app[SB_KEY].channel(request.match_info["team"], request.match_info["name"])
    if ch is None:
        raise AppError(404, "app.channel.get_by_name.missing.app_error", "Channel does not exist.")
    return json_response(ch)


async def state_commands(request: web.Request) -> web.Response:
    return json_response(request.app[SB_KEY].commands(request.match_info["team_id"]))


async def state_callbacks(request: web.Request) -> web.Response:
    out = []
    for cb in request.app[SB_KEY].callbacks:
        d = dataclasses.asdict(cb)
        d["body"] = cb.body.decode("utf-8", "replace")
        d["response_body"] = cb.response_body.decode("utf-8", "replace")
        out.append(d)
    return json_response(out)


def _clock(sb: Any) -> web.Response:
    return json_response({"now": sb.now_ms(), "offset_ms": clock_offset_ms(),
                          "post_edit_time_limit": sb.world.post_edit_time_limit})


async def get_clock(request: web.Request) -> web.Response:
    return _clock(request.app[SB_KEY])


async def advance_clock(request: web.Request) -> web.Response:
    """``{"advance": seconds}``: let that much simulated time pass at once."""
    seconds = (await _body(request)).get("advance")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        raise ValueError('give {"advance": <seconds>}, a number >= 0')
    sb = request.app[SB_KEY]
    sb.advance_clock(seconds)
    return _clock(sb)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/_sandbox/users", _wrap(sim_users))
    r.add_get("/_sandbox/clock", _wrap(get_clock))
    r.add_post("/_sandbox/clock", _wrap(advance_clock))
    r.add_get("/_sandbox/callbacks", _wrap(state_callbacks))
    r.add_get("/_sandbox/channels/{channel_id}/posts", _wrap(state_posts))
    r.add_get("/_sandbox/channels/{channel_id}/pinned", _wrap(state_pinned))
    r.add_get("/_sandbox/channels/{channel_id}/members", _wrap(state_members))
    r.add_get("/_sandbox/teams/{team}/channels/{name}", _wrap(state_channel))
    r.add_get("/_sandbox/teams/{team_id}/commands", _wrap(state_commands))
    base = "/_sandbox/as/{username}"
    r.add_post(base + "/post", _wrap(sim_post))
    r.add_post(base + "/command", _wrap(sim_command))
    r.add_post(base + "/click", _wrap(sim_click))
    r.add_post(base + "/select", _wrap(sim_select))
    r.add_get(base + "/dialog", _wrap(sim_dialog))
    r.add_post(base + "/dialog/submit", _wrap(sim_submit))
    r.add_post(base + "/dialog/cancel", _wrap(sim_cancel))
    r.add_post(base + "/react", _wrap(sim_react))
    r.add_post(base + "/unreact", _wrap(sim_unreact))
    r.add_get(base + "/channel", _wrap(sim_read))
    r.add_get(base + "/ephemeral", _wrap(sim_ephemeral))
    r.add_post(base + "/dm", _wrap(sim_dm))
    r.add_post(base + "/upload", _wrap(sim_upload))

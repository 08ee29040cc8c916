"""GET /api/v4/websocket: Mattermost's event stream (protocol.md §4)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from .httputil import USER
from .ids import new_id, now_ms
from .keys import SB_KEY
from .state import Event

if TYPE_CHECKING:  # the Sandbox is handed in; app.py imports this module
    from .app import Sandbox

log = logging.getLogger("sandbox.websocket")


class Connection:
    """One authenticated WebSocket: its own sequence counter and an ordered send queue."""

    def __init__(self, sb: Sandbox, ws: web.WebSocketResponse, transport: asyncio.Transport | None = None) -> None:
        self.sb = sb
        self.ws = ws
        self.transport = transport
        self.id = new_id()
        self.user_id = ""
        self.seq = 0
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._unsubscribe: Callable[[], None] | None = None
        self._writer: asyncio.Task | None = None

    def register(self, user_id: str) -> None:
        """Authenticate: start receiving the user's events, beginning with ``hello`` (seq 0)."""
        self.user_id = user_id
        self.sb.ws_connections.add(self)
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        self.deliver(Event("hello", {"server_version": self.sb.version_id, "connection_id": self.id},
                           {"omit_users": None, "user_id": user_id, "channel_id": "", "team_id": "",
                            "connection_id": "", "omit_connection_id": ""}))
        self._unsubscribe = self.sb.world.subscribe(user_id, self.deliver)
        self.sb.world.touch()  # lets tests wait_for a client to be connected

    def deliver(self, event: Event) -> None:
        # A blocked user's live connections go silent (a dead peer): frames are lost, seq moves on.
        if self.user_id not in self.sb.ws_blocked:
            self.queue.put_nowait(event.frame(self.seq))
        self.seq += 1

    def reply(self, data: dict) -> None:
        if self.user_id not in self.sb.ws_blocked:
            self.queue.put_nowait(json.dumps(data))

    async def _write_loop(self) -> None:
        try:
            while True:
                frame = await self.queue.get()
                if frame is None or self.ws.closed:
                    return
                await self.ws.send_str(frame)
        except (ConnectionError, RuntimeError):
            pass

    async def close(self) -> None:
        await self.ws.close()

    def abort(self) -> None:
        """Drop the connection like a network failure would: no close frame, just a reset."""
        if self.transport is not None:
            self.transport.abort()

    def detach(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        self.sb.ws_connections.discard(self)
        self.queue.put_nowait(None)
        self.sb.world.touch()


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    sb = request.app[SB_KEY]
    header_user = request.get(USER)
    if header_user is not None and header_user["id"] in sb.ws_blocked:
        _refused(sb, header_user["id"])
        return web.Response(status=503, text="websocket refused (sandbox block_websockets)")
    ws = web.WebSocketResponse(heartbeat=sb.config.ws_ping_interval, autoping=True)
    await ws.prepare(request)
    conn = Connection(sb, ws, request.transport)
    sb.ws_connections.add(conn)
    if header_user is not None:
        conn.register(header_user["id"])
    auth_timer = None
    if not conn.user_id:
        # Unauthenticated sockets are closed after ws_auth_timeout (5 s in Mattermost).
        auth_timer = asyncio.get_running_loop().call_later(
            sb.config.ws_auth_timeout, lambda: asyncio.ensure_future(ws.close()))
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                req = json.loads(msg.data)
                action = req.get("action", "")
                seq = req.get("seq", 0)
                data = req.get("data") or {}
            except (ValueError, AttributeError):
                continue
            if not conn.user_id:
                token = data.get("token", "") if action == "authentication_challenge" else ""
                user = sb.world.user_of_token(token) if isinstance(token, str) and token else None
                if user is None:
                    break  # Mattermost just closes the socket on a bad or missing token
                if user["id"] in sb.ws_blocked:
                    _refused(sb, user["id"])
                    break
                if auth_timer:
                    auth_timer.cancel()
                conn.reply({"status": "OK", "seq_reply": seq})
                conn.register(user["id"])
                continue
            if not isinstance(seq, int) or seq <= 0:
                conn.reply({"status": "FAIL", "seq_reply": seq, "error": {
                    "id": "api.web_socket_router.bad_seq.app_error",
                    "message": "Invalid sequence for WebSocket message."}})
                continue
            if action == "ping":
                conn.reply({"status": "OK", "seq_reply": seq, "data": {
                    "text": "pong", "version": sb.version_id, "server_time": now_ms(), "node_id": ""}})
            elif action == "user_typing":
                cid = data.get("channel_id", "")
                if cid in sb.world.channel_members and conn.user_id in sb.world.channel_members[cid]:
                    sb.world.emit("typing", {"parent_id": data.get("parent_id", ""), "user_id": conn.user_id},
                                  channel_id=cid, omit_users=[conn.user_id])
                conn.reply({"status": "OK", "seq_reply": seq})
            elif action in ("get_statuses", "get_statuses_by_ids"):
                ids = data.get("user_ids") or list(sb.world.users)
                conn.reply({"status": "OK", "seq_reply": seq,
                            "data": {uid: "online" for uid in ids if uid in sb.world.users}})
            else:
                conn.reply({"status": "OK", "seq_reply": seq})
    finally:
        if auth_timer:
            auth_timer.cancel()
        conn.detach()
        if not ws.closed:
            await ws.close()
    return ws


def _refused(sb: Sandbox, user_id: str) -> None:
    sb.ws_refused[user_id] = sb.ws_refused.get(user_id, 0) + 1
    sb.world.touch()


def drop_connections(sb: Sandbox, user_id: str | None = None) -> int:
    """Reset the WebSockets of one user (all users when None); returns how many were dropped."""
    dropped = [conn for conn in list(sb.ws_connections)
               if conn.user_id and (user_id is None or conn.user_id == user_id)]
    for conn in dropped:
        conn.abort()
    return len(dropped)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v4/websocket", websocket_handler)
    app.router.add_get("/api/v4/websocket/", websocket_handler)

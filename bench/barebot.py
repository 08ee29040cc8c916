"""A minimal "bot" on a bare aiohttp client: replays the REST calls Command Center made for one start.

``bench.incident`` records the real bot's calls for one incident start (those made while the slash
command was handled, and those made while the dialog submission was handled) and starts this as
its own process, as the real bot runs. For every ``/bare start NAME`` it makes the same calls in the
same order with the same bodies, with the ids of this start put in (the user, the trigger id, the
name, and every id an earlier answer of this start returned: the channel, the posts, the DM
channel); a post gets a fresh ``pending_post_id``. No store, no rendering, no checks: what is left is
what the calls cost on a bare aiohttp client.

With ``ws`` it also holds the bot's WebSocket, as every real bot does: it connects, authenticates and
reads every event the sandbox pushes (those its own calls cause included), dropping each unlooked-at;
so the sandbox fans out the same events to it as to Command Center.

python -m bench.barebot TEMPLATE.json MATTERMOST_URL TOKEN [ws]  → prints ``barebot ready url=...``
GET /stats answers ``{"rest_calls": n, "rest_cpu_s": s, "events": n}`` (process CPU spent inside the calls;
WebSocket events read).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import aiohttp
from aiohttp import web


def substitute(value: Any, mapping: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for old, new in mapping:
            if old in value:
                value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {substitute(k, mapping): substitute(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, mapping) for v in value]
    return value


class BareBot:
    def __init__(self, template: dict, mattermost_url: str, token: str, *, websocket: bool = False) -> None:
        self.template = template
        self.websocket = websocket
        self.events = 0
        self.connected = asyncio.Event()
        self.api = mattermost_url
        self.token = token
        self.base_url = ""
        self.session: aiohttp.ClientSession | None = None
        self.rest_calls = 0
        self.rest_cpu = 0.0
        self._last_pending_ms = 0
        self.usernames: dict[str, str] = {}

    async def call(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        assert self.session is not None
        started = time.process_time()
        async with self.session.request(method, self.api + path, params=query or None,
                                        json=body if body is not None else None) as answer:
            raw = await answer.read()
            data = json.loads(raw) if answer.content_type == "application/json" and raw else None
        self.rest_cpu += time.process_time() - started
        self.rest_calls += 1
        return answer.status, data

    async def replay(self, calls: list[dict], mapping: list[tuple[str, str]]) -> None:
        mapping = list(mapping)
        for recorded in calls:
            order = sorted(mapping, key=lambda pair: -len(pair[0]))
            body = substitute(recorded["body"], order)
            if isinstance(body, dict) and "pending_post_id" in body:
                self._last_pending_ms = max(int(time.time() * 1000), self._last_pending_ms + 1)
                body["pending_post_id"] = f"{self.template['bot_id']}:{self._last_pending_ms}"
            _, answer = await self.call(recorded["method"], substitute(recorded["path"], order),
                                        substitute(recorded["query"], order), body)
            old = recorded["response"]
            if isinstance(old, dict) and isinstance(answer, dict) and old.get("id") and answer.get("id"):
                mapping.append((old["id"], answer["id"]))

    def _mapping(self, user_id: str, username: str, name: str) -> list[tuple[str, str]]:
        t = self.template
        return [(t["user_id"], user_id), ("@" + t["username"], "@" + username), (t["name"], name),
                (t["bot_url"], self.base_url)]

    async def on_request(self, request: web.Request) -> web.Response:
        if request.content_type == "application/x-www-form-urlencoded":  # the slash command
            form = await request.post()
            name = str(form.get("text", "")).split()[-1]
            self.usernames[str(form["user_id"])] = str(form["user_name"])
            mapping = self._mapping(str(form["user_id"]), str(form["user_name"]), name)
            mapping.append((self.template["trigger_id"], str(form["trigger_id"])))
            await self.replay(self.template["command"], mapping)
            return web.json_response({})
        payload = await request.json()
        if request.path == "/stats":
            return web.json_response({"rest_calls": self.rest_calls, "rest_cpu_s": self.rest_cpu,
                                      "events": self.events})
        submission = payload.get("submission") or {}
        user_id = str(payload.get("user_id", ""))
        username = self.usernames.get(user_id, self.template["username"])
        await self.replay(self.template["dialog"], self._mapping(user_id, username, str(submission.get("name", ""))))
        return web.Response(status=200)

    async def hold_websocket(self) -> None:
        """Connect, authenticate, and read every event until the process ends (each one dropped)."""
        assert self.session is not None
        url = "ws" + self.api[len("http"):] + "/api/v4/websocket"
        async with self.session.ws_connect(url, autoping=True) as ws:
            await ws.send_str(json.dumps({"seq": 1, "action": "authentication_challenge",
                                          "data": {"token": self.token}}))
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                if not self.connected.is_set() and '"hello"' in message.data:
                    self.connected.set()
                self.events += 1

    async def run(self) -> None:
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"})
        holder = None
        if self.websocket:
            holder = asyncio.create_task(self.hold_websocket())
            await asyncio.wait_for(self.connected.wait(), 10)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.on_request)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        print(f"barebot ready url={self.base_url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            if holder is not None:
                holder.cancel()
            await runner.cleanup()
            await self.session.close()


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as file:
        template = json.load(file)
    try:
        asyncio.run(BareBot(template, sys.argv[2], sys.argv[3], websocket=sys.argv[4:5] == ["ws"]).run())
    except KeyboardInterrupt:
        pass

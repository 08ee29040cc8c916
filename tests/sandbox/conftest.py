"""Fixtures: a sandbox on the demo world and a programmable fake integration."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sandbox import Sandbox, SandboxConfig

DEMO = Path(__file__).resolve().parents[2] / "sandbox" / "seeds" / "demo.yaml"


@dataclass
class Received:
    """A request the fake integration received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        from urllib.parse import parse_qs
        return parse_qs(self.body.decode(), keep_blank_values=True)


Handler = Callable[[Received], Awaitable[web.StreamResponse]]


class Integration:
    """An HTTP server on loopback standing in for the bot's callback endpoint.

    ``routes[path]`` is an async function of the Received request returning a response;
    unknown paths answer 404.
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.routes: dict[str, Handler] = {}
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> Integration:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def url(self, path: str) -> str:
        return self.base + path

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        rec = Received(request.method, request.path,
                       {k: request.query.getall(k) for k in request.query},
                       dict(request.headers), await request.read())
        self.received.append(rec)
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="no such route")
        return await handler(rec)


def json_reply(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig(record=True, integration_timeout=2.0, ws_auth_timeout=0.3)


@pytest.fixture
async def sb(config: SandboxConfig):
    async with Sandbox(DEMO, config=config) as sandbox:
        yield sandbox


@pytest.fixture
async def integration():
    it = await Integration().start()
    yield it
    await it.stop()


class Api:
    """Raw REST calls as a given user, returning (status, headers, parsed body)."""

    def __init__(self, sb: Sandbox, session: aiohttp.ClientSession) -> None:
        self.sb = sb
        self.session = session

    async def __call__(self, method: str, path: str, *, as_user: str | None = None, json_body: Any = None,
                       data: Any = None, headers: dict | None = None) -> tuple[int, Any, Any]:
        hdrs = dict(headers or {})
        if as_user:
            hdrs["Authorization"] = f"Bearer {self.sb.token_of(as_user)}"
        async with self.session.request(method, self.sb.url + path, json=json_body, data=data,
                                        headers=hdrs) as resp:
            raw = await resp.read()
            body: Any = raw
            if resp.headers.get("Content-Type") == "application/json":
                body = json.loads(raw)
            return resp.status, resp.headers, body


@pytest.fixture
def api(sb: Sandbox, http: aiohttp.ClientSession) -> Api:
    return Api(sb, http)


async def register_command(api: Api, sb: Sandbox, url: str, trigger: str = "incident",
                           method: str = "P", as_user: str = "incident") -> dict:
    status, _, cmd = await api("POST", "/api/v4/commands", as_user=as_user, json_body={
        "team_id": sb.team("acme")["id"], "trigger": trigger, "url": url, "method": method,
        "auto_complete": True, "display_name": "Incident"})
    assert status == 201, cmd
    return cmd


async def never(_: Received) -> web.Response:
    """An integration that never answers."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")

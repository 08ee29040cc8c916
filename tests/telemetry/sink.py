"""A local stand-in for a RudderStack data plane: an aiohttp server on loopback that records batches."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import socket
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Batch:
    """One POST as the data plane received it."""

    path: str
    headers: dict[str, str]
    body: dict
    raw: bytes = field(repr=False, default=b"")

    @property
    def write_key(self) -> str | None:
        """The write key from HTTP basic auth (``key:`` with an empty password)."""
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if scheme != "Basic":
            return None
        user, _, _password = base64.b64decode(encoded).decode().partition(":")
        return user


class Sink:
    """Records every POST; ``mode`` is "ok" (200), "hang" (never answers until released) or "error" (500)."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.batches: list[Batch] = []
        self._changed = asyncio.Condition()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()

    def release(self) -> None:
        """Let hanging requests finish (with a 200)."""
        self._release.set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        batch = Batch(path=request.path, headers=dict(request.headers), body=json.loads(data), raw=raw)
        async with self._changed:
            self.batches.append(batch)
            self._changed.notify_all()
        if self.mode == "hang":
            await self._release.wait()
        if self.mode == "error":
            return web.json_response({"code": "unavailable", "message": "try later"}, status=500)
        return web.Response(text="OK")

    @property
    def messages(self) -> list[dict]:
        """Every message of every batch, in arrival order."""
        return [message for batch in self.batches for message in batch.body.get("batch", [])]

    def events(self, name: str | None = None) -> list[dict]:
        """Track messages, optionally only those named ``name``."""
        return [m for m in self.messages if m.get("type") == "track" and (name is None or m.get("event") == name)]

    async def wait_for(self, predicate, timeout: float = 10.0):
        """Wait until ``predicate(self)`` is truthy after some batch arrived; return its value."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self)), timeout)
            return predicate(self)


def closed_port_url() -> str:
    """The URL of a loopback port nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"

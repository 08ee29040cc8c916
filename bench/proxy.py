"""A tiny loopback load balancer for Mattermost's callbacks to several bot replicas (tests, bench.soak).

Each request goes to the replica :attr:`ReplicaProxy.route` picks (default: the next one in turn);
a replica that refuses the connection (it is dead) is skipped for the next one, as a load balancer
with passive health checks does. ``deploy/nginx.conf`` is the production counterpart.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable

import aiohttp
from aiohttp import web

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length"}


class ReplicaProxy:
    """Forwards every request to one of ``targets`` (base URLs such as ``http://127.0.0.1:8081``)."""

    def __init__(self, targets: list[str], *, host: str = "127.0.0.1") -> None:
        if not targets:
            raise ValueError("a proxy needs at least one target")
        self.targets = [target.rstrip("/") for target in targets]
        self.host = host
        self._turn = itertools.cycle(range(len(self.targets)))
        #: Picks the target index for a request (default: round robin); tests pin it to one replica.
        self.route: Callable[[web.Request], int] = lambda request: next(self._turn)
        self.served: Counter[int] = Counter()  # requests answered, per target index
        self.skipped: Counter[int] = Counter()  # requests a dead target refused, per target index
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def pin(self, index: int | None) -> None:
        """Send everything to one target (None: round robin again)."""
        self.route = (lambda request: next(self._turn)) if index is None else (lambda request: index)

    async def start(self) -> str:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        first = self.route(request) % len(self.targets)
        for offset in range(len(self.targets)):
            index = (first + offset) % len(self.targets)
            try:
                async with self._session.request(request.method, self.targets[index] + request.path_qs,
                                                 headers=headers, data=body, allow_redirects=False) as answer:
                    payload = await answer.read()
                    self.served[index] += 1
                    kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
                    return web.Response(status=answer.status, body=payload, headers=kept)
            except aiohttp.ClientConnectorError:
                self.skipped[index] += 1
                continue
            except aiohttp.ClientError as error:  # died while answering: the request may have had effect
                return web.Response(status=502, text=f"the replica went away: {type(error).__name__}")
        return web.Response(status=502, text="no replica answered")


__all__ = ["ReplicaProxy"]

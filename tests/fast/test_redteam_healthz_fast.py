"""Red team: ``GET /healthz`` needs no credentials, and each check reads the store and pings
Mattermost. A flood of unauthenticated requests must not become a flood of database reads (a
PostgreSQL pool connection each) and pings: requests that arrive while a check runs share it."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.inbound import CommandTokens, InboundServer, Route
from gateway.routing import Registry
from gateway.signing import Signer

pytestmark = pytest.mark.fast


async def test_concurrent_health_requests_share_one_check_and_a_later_one_checks_again():
    calls = 0
    release = asyncio.Event()

    async def health():
        nonlocal calls
        calls += 1
        await release.wait()
        return True, {"store": "ok"}

    all_in = asyncio.Event()

    class Counting(InboundServer):
        arrived = 0

        async def handle_health(self, request):
            self.arrived += 1
            if self.arrived == 50:
                all_in.set()
            return await super().handle_health(request)

    inbound = Counting(Registry(), Signer("secret" * 8), CommandTokens(), health)
    client = TestClient(TestServer(inbound.app))
    await client.start_server()
    try:
        requests = [asyncio.create_task(client.get(Route.HEALTH.value)) for _ in range(50)]
        await asyncio.wait_for(all_in.wait(), 10)  # every request has reached the server while the check runs
        release.set()
        responses = await asyncio.gather(*requests)
        assert [r.status for r in responses] == [200] * 50
        assert calls == 1, calls
        # Nothing is cached: a request after the check has ended checks again (a load balancer sees changes at once).
        again = await client.get(Route.HEALTH.value)
        assert again.status == 200 and calls == 2
    finally:
        await client.close()

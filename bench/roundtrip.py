"""`/incident help` round trip through the sandbox at 1 and 50 concurrent users, against baselines.

Baselines, measured in the same run:
- bare: a client POST to a bare aiohttp handler on loopback (one hop);
- bare via sandbox: the same bare handler registered as a slash command, typed through the sandbox,
  so the ratio bot / bare-via-sandbox is what the bot itself adds.

python -m bench.roundtrip [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
from aiohttp import web

from bench.harness import EDIT_TIME_LIMIT, bot_process, found, percentiles, world
from sandbox import Sandbox, SandboxConfig


async def _bare_server() -> tuple[web.AppRunner, str]:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b'{"response_type":"ephemeral","text":"ok"}', content_type="application/json")

    app = web.Application()
    app.router.add_post("/bare", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server  # aiohttp exposes no public accessor for the bound socket
    assert isinstance(server, asyncio.Server)
    port = server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/bare"


async def _timed(concurrency: int, total: int, one) -> list[float]:
    samples: list[float] = []
    per_worker = max(1, total // concurrency)

    async def worker(index: int) -> None:
        for _ in range(per_worker):
            started = time.perf_counter()
            await one(index)
            samples.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return samples


async def main(total: int) -> None:
    users = 50
    runner, bare_url = await _bare_server()
    results: dict[str, float] = {}
    try:
        async with Sandbox(world(users), config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sandbox:
            admin = sandbox.user("u000")
            team_id = found(sandbox.team("acme"), "team acme")["id"]
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin.token}"}) as http:
                async with http.post(f"{sandbox.url}/api/v4/commands", json={
                        "team_id": team_id, "trigger": "bare", "method": "P", "url": bare_url}) as response:
                    assert response.status == 201, await response.text()
            people = [sandbox.user(f"u{i:03d}") for i in range(users)]

            async with bot_process(sandbox.url) as _:
                async with aiohttp.ClientSession() as http:
                    async def bare_direct(_: int) -> None:
                        async with http.post(bare_url, data=b"token=x") as response:
                            await response.read()

                    async def bare_via_sandbox(i: int) -> None:
                        result = await people[i].command("town-square", "/bare")
                        assert result.status == 200, result.error

                    async def bot_help(i: int) -> None:
                        result = await people[i].command("town-square", "/incident help")
                        assert result.status == 200 and result.ephemeral, result.error

                    for _ in range(20):  # warm up connections and code paths
                        await bot_help(0)
                        await bare_via_sandbox(0)
                    for concurrency in (1, 50):
                        for name, one in (("bare", bare_direct), ("bare_sandbox", bare_via_sandbox), ("help", bot_help)):
                            count = total if concurrency == 50 else total // 2
                            p50, p99 = percentiles(await _timed(concurrency, count, one))
                            results[f"{name}_c{concurrency}_p50_ms"] = p50
                            results[f"{name}_c{concurrency}_p99_ms"] = p99
                            print(f"{name:>13} at {concurrency:>2} users: p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
    finally:
        await runner.cleanup()
    for concurrency in (1, 50):
        results[f"ratio_vs_bare_c{concurrency}"] = results[f"help_c{concurrency}_p50_ms"] / results[f"bare_c{concurrency}_p50_ms"]
        results[f"ratio_vs_bare_sandbox_c{concurrency}"] = (
            results[f"help_c{concurrency}_p50_ms"] / results[f"bare_sandbox_c{concurrency}_p50_ms"])
    print(" ".join(f"{key}={value:.2f}" for key, value in results.items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    asyncio.run(main(parser.parse_args().requests))

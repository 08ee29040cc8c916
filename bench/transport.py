"""CPU per REST call through each way the bot could talk to Mattermost, side by side.

The sandbox runs as its own process, so ``time.process_time()`` of this process is the client's
CPU alone. Every option makes the same calls in the same order (a round: GET users/me, GET a channel,
POST a post, PUT its patch, POST its pin), one at a time and 20 at once (where httpcore's pool scan
grows with the connections), rounds interleaved between the options so that a busy
machine slows them all alike; the figure is the median over repetitions.

Options:
  httpx            mattermostautodriver's AsyncClient as shipped (httpx + httpcore's pool): the bot before
  httpx_aiohttp    the same AsyncClient with an httpx transport handing every request to one aiohttp session
  ours             gateway.client.MattermostClient (mattermostautodriver's API over gateway.transport)
  bare             a bare aiohttp.ClientSession, URLs and JSON written by hand

python -m bench.transport [--rounds 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import httpx
from mattermostautodriver import AsyncDriver
from mattermostautodriver.client import AsyncClient

from gateway.client import MattermostClient

ROOT = Path(__file__).resolve().parents[1]
BOT_TOKEN = "xoeg5dzc1pd7zri85ryzeg3gda"  # the demo world's bot
TOWN_SQUARE = "ahzqezf33jny9mpst758dnaahw"
CALLS_PER_ROUND = 5
PROPS = {"attachments": [{"text": "⬜ **1.1** Confirm the outage", "actions": [
    {"id": "check", "name": "Check", "integration": {"url": "http://127.0.0.1:1/a", "context": {"c": "x" * 120}}}]}]}


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends through one aiohttp session (the option of keeping httpx)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        async with self.session.request(request.method, str(request.url), headers=request.headers.multi_items(),
                                        data=body or None) as answer:
            content = await answer.read()
        return httpx.Response(answer.status, headers=list(answer.headers.items()), content=content)


def driver_options(url: str) -> dict:
    host_port = url.split("://", 1)[1]
    host, port = host_port.split(":")
    return {"scheme": "http", "url": host, "port": int(port), "basepath": "", "token": BOT_TOKEN,
            "request_timeout": 10, "timeout": 10}


async def driver_round(driver) -> None:
    await driver.users.get_user("me")
    await driver.channels.get_channel(TOWN_SQUARE)
    post = await driver.posts.create_post({"channel_id": TOWN_SQUARE, "message": "bench", "props": PROPS})
    await driver.posts.patch_post(post["id"], {"props": PROPS})
    await driver.posts.pin_post(post["id"])


class Option:
    name = ""

    async def open(self, url: str) -> None: ...

    async def round(self) -> None: ...

    async def close(self) -> None: ...


class Httpx(Option):
    name = "httpx"

    async def open(self, url):
        self.driver = AsyncDriver(driver_options(url), client_cls=AsyncClient)
        self.driver.client.token = BOT_TOKEN

    async def round(self):
        await driver_round(self.driver)

    async def close(self):
        await self.driver.client.client.aclose()


class HttpxAiohttp(Httpx):
    name = "httpx_aiohttp"

    async def open(self, url):
        await super().open(url)
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        self.driver.client.client = httpx.AsyncClient(transport=AiohttpTransport(self.session))

    async def close(self):
        await super().close()
        await self.session.close()


class Ours(Option):
    name = "ours"

    async def open(self, url):
        self.client = MattermostClient(url, BOT_TOKEN)
        await self.client.login()

    async def round(self):
        client = self.client
        await client.get_user("me")
        await client.get_channel(TOWN_SQUARE)
        post = await client.create_post(TOWN_SQUARE, "bench", props=PROPS)
        await client.patch_post(post.id, {"props": PROPS})
        await client.pin_post(post.id)

    async def close(self):
        await self.client.close()


class Bare(Option):
    name = "bare"

    async def open(self, url):
        self.url = url + "/api/v4"
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {BOT_TOKEN}"})

    async def _call(self, method: str, path: str, body=None):
        async with self.session.request(method, self.url + path, json=body) as answer:
            data = await answer.json()
            if answer.status >= 400:
                raise RuntimeError(f"{method} {path} -> {answer.status} {data}")
            return data

    async def round(self):
        await self._call("GET", "/users/me")
        await self._call("GET", f"/channels/{TOWN_SQUARE}")
        post = await self._call("POST", "/posts", {"channel_id": TOWN_SQUARE, "message": "bench", "props": PROPS})
        await self._call("PUT", f"/posts/{post['id']}/patch", {"props": PROPS})
        await self._call("POST", f"/posts/{post['id']}/pin")

    async def close(self):
        await self.session.close()


async def measure(option: Option, rounds: int, concurrency: int = 1) -> tuple[float, float]:
    """(CPU ms per call, wall ms per call) over ``rounds`` rounds, ``concurrency`` at a time."""
    each = max(1, rounds // concurrency)

    async def worker() -> None:
        for _ in range(each):
            await option.round()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    calls = each * concurrency * CALLS_PER_ROUND
    return (time.process_time() - cpu) * 1000 / calls, (time.perf_counter() - wall) * 1000 / calls


async def main(rounds: int, repeats: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox", "--port", "0", "--log-level", "WARNING", cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE)
    options: list[Option] = [Httpx(), HttpxAiohttp(), Ours(), Bare()]
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        url = line.split("url=", 1)[1]
        for option in options:
            await option.open(url)
            await measure(option, 20)  # warm up: connections, caches
        figures = {}
        for concurrency in (1, 20):
            samples: dict[str, list[tuple[float, float]]] = {option.name: [] for option in options}
            for _ in range(repeats):
                for option in options:
                    samples[option.name].append(await measure(option, rounds, concurrency))
            for option in options:
                cpu = statistics.median(s[0] for s in samples[option.name])
                wall = statistics.median(s[1] for s in samples[option.name])
                figures[f"{option.name}_c{concurrency}_cpu_ms_per_call"] = cpu
                figures[f"{option.name}_c{concurrency}_wall_ms_per_call"] = wall
                print(f"{option.name:>14} at {concurrency:>2} at once: CPU {cpu:6.3f} ms per call   "
                      f"wall {wall:6.3f} ms per call", flush=True)
            bare = figures[f"bare_c{concurrency}_cpu_ms_per_call"]
            for name in ("httpx", "httpx_aiohttp", "ours"):
                figures[f"{name}_c{concurrency}_vs_bare_cpu"] = figures[f"{name}_c{concurrency}_cpu_ms_per_call"] / bare
    finally:
        for option in options:
            try:
                await option.close()
            except Exception:
                pass
        proc.terminate()
        await proc.wait()
    print(" ".join(f"{key}={value:.3f}" for key, value in figures.items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="rounds of 5 calls per measurement")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.repeats))

"""Sandbox throughput on loopback: create-post and get-posts requests per second.

Runs the sandbox as its own process (``python -m sandbox``, demo world) and drives it
with a few concurrent keep-alive clients for a bounded time per phase.
Usage: ``python -m bench.sandbox [--seconds 3] [--clients 4]``. The last line is
``create_post_rps=... get_posts_rps=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
TOKENS = ["7arqwr6kzibc58zomct9ndfk1e", "bq8gq7a3ejnpfy1ab9kuw45uio", "c8xyd4jg5tn6bdxbtabw3pgyfh",
          "dqkw4zemabyo8f9j7dpcqo3a3c", "xoeg5dzc1pd7zri85ryzeg3gda"]
TOWN_SQUARE = "ahzqezf33jny9mpst758dnaahw"


async def _client(url: str, token: str, method: str, path: str, body: dict | None, deadline: float,
                  latencies: list[float]) -> int:
    done = 0
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            async with session.request(method, url + path, json=body) as resp:
                await resp.read()
                if resp.status >= 300:
                    raise RuntimeError(f"{method} {path} -> {resp.status}")
            latencies.append(time.perf_counter() - t0)
            done += 1
    return done


async def _phase(name: str, url: str, clients: int, seconds: float, method: str, path: str,
                 body: dict | None) -> float:
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    counts = await asyncio.gather(*(_client(url, TOKENS[i % len(TOKENS)], method, path, body, deadline, latencies)
                                    for i in range(clients)))
    elapsed = time.perf_counter() - start
    rps = sum(counts) / elapsed
    lat = sorted(latencies)
    p50 = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    print(f"{name}: {sum(counts)} requests in {elapsed:.2f}s with {clients} clients -> {rps:.0f} req/s "
          f"(p50 {p50:.2f} ms, p99 {p99:.2f} ms)", flush=True)
    return rps


async def main(seconds: float, clients: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox", "--port", "0", "--log-level", "WARNING", cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        url = line.split("url=", 1)[1]
        create = await _phase("create_post", url, clients, seconds, "POST", "/api/v4/posts",
                              {"channel_id": TOWN_SQUARE, "message": "benchmark message with @bob"})
        get = await _phase("get_posts", url, clients, seconds, "GET",
                           f"/api/v4/channels/{TOWN_SQUARE}/posts?page=0&per_page=60", None)
        print(f"create_post_rps={create:.0f} get_posts_rps={get:.0f}")
    finally:
        proc.terminate()
        await proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.clients))

"""Alert intake: throughput and latency of 10,000 alerts of which 90 % are repeats.

python -m bench.alerts [--alerts 10000] [--distinct 1000] [--per-request 10] [--concurrency 8]

The bot runs as a real process (SQLite file, production settings) against the sandbox, with one
``suggest`` routing rule into town-square. ``--distinct`` alerts (fingerprints, ten per group key)
are sent ``alerts / distinct`` times each, shuffled, as Alertmanager webhook payloads (version 4) of
``--per-request`` alerts, by ``--concurrency`` senders at once. Measured: the time of each request
(what Alertmanager waits for: the answer comes once the alerts are recorded), the whole run's alerts
per second, the bot's CPU, and afterwards what was recorded and how many posts the storm made
(bounded by the flood limit). Prints one human line and one line of key=value pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.harness import EDIT_TIME_LIMIT, bot_process, cpu_seconds, found, percentiles, world
from sandbox import Sandbox, SandboxConfig

SECRET = "bench-alertmanager-secret-0123456789"
RULES = """\
flood: {window: 10m, max_posts: 5, batch_delay: 2s}
rules:
  - name: bench
    match: {labels: {severity: {exists: true}}}
    team: acme
    channel: town-square
    playbook: Incident Response
    mode: suggest
"""


def notifications(total: int, distinct: int, per_request: int, seed: int = 7) -> list[bytes]:
    sends = [n % distinct for n in range(total)]
    random.Random(seed).shuffle(sends)
    bodies = []
    for start in range(0, len(sends), per_request):
        chunk = sends[start:start + per_request]
        group = chunk[0] // 10
        bodies.append(json.dumps({
            "version": "4", "receiver": "command-center", "status": "firing",
            "groupKey": f"{{}}:{{group=\"{group}\"}}", "groupLabels": {"group": str(group)},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://alertmanager.example:9093",
            "truncatedAlerts": 0,
            "alerts": [{"status": "firing", "fingerprint": f"{n:016x}",
                        "labels": {"alertname": f"Bench{n % 13}", "severity": "warning", "instance": f"host-{n}"},
                        "annotations": {"summary": f"alert {n}"}, "startsAt": "2026-01-01T00:00:00Z",
                        "endsAt": "0001-01-01T00:00:00Z", "generatorURL": ""} for n in chunk]}).encode())
    return bodies


async def main(total: int, distinct: int, per_request: int, concurrency: int) -> None:
    bodies = notifications(total, distinct, per_request)
    with tempfile.TemporaryDirectory(prefix="cc-bench-alerts-") as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(RULES, encoding="utf-8")
        data_dir = Path(tmp) / "data"
        env = {"CC_ALERTS_RULES_FILE": str(rules), "CC_ALERTS_ALERTMANAGER_SECRET": SECRET,
               "CC_DATA_DIR": str(data_dir)}
        async with Sandbox(world(4), config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sandbox:
            town = found(sandbox.channel("acme", "town-square"), "town-square")["id"]
            async with bot_process(sandbox.url, settings=env) as (process, base_url):
                url = base_url + "/alerts/alertmanager"
                headers = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
                latencies: list[float] = []
                failures = 0
                queue: asyncio.Queue[bytes] = asyncio.Queue()
                for body in bodies:
                    queue.put_nowait(body)
                connector = aiohttp.TCPConnector(limit=concurrency)
                async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
                    async def sender() -> None:
                        nonlocal failures
                        while not queue.empty():
                            body = queue.get_nowait()
                            started = time.perf_counter()
                            async with http.post(url, data=body) as response:
                                await response.read()
                                failures += response.status != 200
                            latencies.append((time.perf_counter() - started) * 1000)

                    cpu_before = cpu_seconds(process.pid)
                    started = time.perf_counter()
                    await asyncio.gather(*(sender() for _ in range(concurrency)))
                    elapsed = time.perf_counter() - started
                    cpu = cpu_seconds(process.pid) - cpu_before
                # Let the last batch be posted (the flood limit bounds it), then read what was recorded.
                posts_before = -1
                while True:
                    await asyncio.sleep(3)  # a benchmark's wait for the bot's batch delay, not a test sync
                    posts = sum(1 for post in sandbox.posts(town) if post.get("user_id") != "")
                    if posts == posts_before:
                        break
                    posts_before = posts
                with sqlite3.connect(data_dir / "command-center.db") as conn:
                    recorded, counted = conn.execute("SELECT count(*), coalesce(sum(count), 0) FROM alerts").fetchone()
                    groups = conn.execute("SELECT count(*) FROM alert_groups").fetchone()[0]
    p50, p99 = percentiles(latencies)
    rate = total / elapsed if elapsed else 0.0
    print(f"{total} alerts ({distinct} distinct, {100 - 100 * distinct // total} % repeats) in {len(bodies)} "
          f"requests of {per_request}: {rate:,.0f} alerts/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms per request; "
          f"bot CPU {cpu:.1f} s; recorded {recorded} alerts ({counted} notifications) in {groups} groups; "
          f"{posts} posts; {failures} failed requests")
    print(f"alerts={total} distinct={distinct} requests={len(bodies)} per_request={per_request} "
          f"concurrency={concurrency} seconds={elapsed:.2f} alerts_per_s={rate:.0f} "
          f"requests_per_s={len(bodies) / elapsed if elapsed else 0:.0f} p50_ms={p50:.2f} p99_ms={p99:.2f} "
          f"bot_cpu_s={cpu:.2f} recorded={recorded} notifications={counted} groups={groups} posts={posts} "
          f"failed={failures}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--distinct", type=int, default=1_000)
    parser.add_argument("--per-request", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.alerts, args.distinct, args.per_request, args.concurrency))

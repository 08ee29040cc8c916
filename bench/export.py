"""`/incident export` of a 50,000-post channel: time and the bot's peak memory.

python -m bench.export [--posts 50000]

The sandbox runs in a child process holding one private incident channel with ``posts`` posts
(mixed: short and 2,000-character messages, commas, quotes and line breaks, threads, system
posts), so this process's memory is the bot's alone.  The bot side is the real HistoryService
export: page the channel from the sandbox (200 a page), write the CSV through a spool file, upload
it to a DM and post it.  Two runs: one timed, one under tracemalloc for the peak of Python
allocations (the timed run also records how far the process's peak RSS grew).  Ends with one
key=value line.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
import tracemalloc
from pathlib import Path

from bench.harness import found
from domain.models import Incident, Stage
from gateway.client import MattermostClient
from gateway.directory import Directory
from gateway.models import FileInfo
from gateway.signing import Signer
from services.context import BotContext
from services.history import ExportResult, HistoryService
from settings import Settings
from storage.memory import MemoryStore

SEED = Path(__file__).resolve().parents[1] / "sandbox" / "seeds" / "demo.yaml"


def _message(number: int) -> str:
    if number % 50 == 0:
        return f"Long analysis {number}: " + "latency rose, then fell; " * 80
    if number % 10 == 0:
        return f'Update {number}, "quoted", with commas\nand a second line\r\nand a third'
    return f"message {number} ✓ checking the dashboards"


def _serve(posts: int, ready, stop) -> None:
    asyncio.run(_serve_async(posts, ready, stop))


async def _serve_async(posts: int, ready, stop) -> None:
    from sandbox import Sandbox

    async with Sandbox(SEED) as sandbox:
        world = sandbox.world
        team_id = found(sandbox.team("acme"), "team acme")["id"]
        bot_id = sandbox.user_id("incident")
        people = [sandbox.user_id(name) for name in ("alice", "bob", "carol", "dave")]
        channel = world.create_channel(team_id=team_id, name="big-incident", display_name="Big incident",
                                       ctype="P", creator_id=bot_id)
        for person in people:
            world.add_member(channel, person, bot_id)
        root = ""
        for number in range(posts - len(people)):
            reply = number % 7 == 3 and root
            post = world.create_post(user_id=people[number % len(people)], channel_id=channel["id"],
                                     message=_message(number), root_id=root if reply else "")
            if not reply:
                root = post["id"]
        ready.put({"url": sandbox.url, "token": sandbox.token_of("incident"), "team_id": team_id,
                   "channel_id": channel["id"], "alice": people[0], "posts": len(world.channel_posts[channel["id"]])})
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def _export_once(world: dict, traced: bool) -> tuple[float, int, tuple[ExportResult, FileInfo]]:
    client = MattermostClient(world["url"], world["token"], timeout=60.0)
    await client.login()
    try:
        # The export needs only the client; the store is an empty in-memory one.
        settings = Settings(mattermost_url=world["url"], bot_token=world["token"])
        ctx = BotContext(settings=settings, client=client, signer=Signer("bench"), store=MemoryStore())
        service = HistoryService(ctx, Directory(client))
        incident = Incident(id="i" * 26, team_id=world["team_id"], channel_id=world["channel_id"], name="Big incident",
                            commander_id=world["alice"], creator_id=world["alice"], public=False,
                            stages=(Stage(id="s" * 26, title="Triage"),), created_at=int(time.time() * 1000))
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        result = await service.export(incident, world["alice"], wait_s=3600)
        elapsed = time.perf_counter() - started
        peak = 0
        if traced:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        dm = await client.direct_channel_with(world["alice"])
        newest = await client.channel_posts(dm.id, per_page=1)
        info = await client.file_info(newest.listed[0].file_ids[0])
        return elapsed, peak, (result, info)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=50_000)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(args.posts, ready, stop), daemon=True)
    server.start()
    try:
        world = ready.get(timeout=600)
        print(f"channel: {world['posts']} posts (sandbox in process {server.pid})")
        rss_before = _peak_rss_kib()
        elapsed, _, (result, info) = asyncio.run(_export_once(world, traced=False))
        rss_growth = _peak_rss_kib() - rss_before
        if result.posts != world["posts"]:
            raise SystemExit(f"exported {result.posts} posts, expected {world['posts']}")
        size_mib = info.size / (1 << 20)
        print(f"timed run: {elapsed:.2f} s for {result.posts} posts ({result.posts / elapsed:,.0f} posts/s), "
              f"CSV {size_mib:.1f} MiB, peak RSS grew {rss_growth / 1024:.1f} MiB")
        traced_elapsed, peak, _ = asyncio.run(_export_once(world, traced=True))
        print(f"traced run: {traced_elapsed:.2f} s, peak Python allocations {peak / (1 << 20):.1f} MiB "
              f"({peak / info.size:.0%} of the CSV size)")
        print(f"export_posts={result.posts} export_seconds={elapsed:.2f} export_csv_mib={size_mib:.1f} "
              f"export_peak_alloc_mib={peak / (1 << 20):.1f} export_peak_rss_growth_mib={rss_growth / 1024:.1f}")
    finally:
        stop.set()
        server.join(timeout=10)


if __name__ == "__main__":
    main()

"""CPU and memory of the connected, idle bot (target: under 1 % of one core).

python -m bench.idle [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.harness import EDIT_TIME_LIMIT, bot_process, cpu_seconds, rss_mb, world
from sandbox import Sandbox, SandboxConfig


async def main(seconds: float) -> None:
    async with Sandbox(world(5), config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sandbox:
        async with bot_process(sandbox.url) as (process, _):
            await asyncio.sleep(2.0)  # let start-up work settle before measuring
            cpu_before, wall_before = cpu_seconds(process.pid), time.monotonic()
            await asyncio.sleep(seconds)
            cpu_used, wall = cpu_seconds(process.pid) - cpu_before, time.monotonic() - wall_before
            memory = rss_mb(process.pid)
    percent = 100.0 * cpu_used / wall
    print(f"idle bot over {wall:.1f} s: {cpu_used * 1000:.0f} ms CPU = {percent:.3f} % of one core "
          f"(target < 1 %), RSS {memory:.1f} MB")
    print(f"idle_cpu_percent={percent:.3f} cpu_ms={cpu_used * 1000:.0f} seconds={wall:.1f} rss_mb={memory:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    asyncio.run(main(parser.parse_args().seconds))

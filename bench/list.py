"""`/incident list` latency with 10,000 incidents visible to one user.

python -m bench.list [--public 9000] [--shared 1000] [--hidden 1000] [--rounds 30]

The world: team acme in the sandbox, a store (SQLite file) holding ``public`` public incidents,
``shared`` private incidents whose channel dave is in and ``hidden`` private ones he is not in
(so dave sees public + shared = 10,000 by default), all with real sandbox channels.  The real bot
(CommandCenter) runs against the in-process sandbox, and dave types the commands through the
sandbox, so each sample is the whole round trip a user waits for: slash command → bot → store →
membership checks (the bot may not list dave's channels, see services/history.py) → reply.

Measured per scenario, ``rounds`` times each: first page, page 2, page 50, ``ongoing``,
``--search``, and the first page as a system admin (alice).  Ends with one key=value line
(p50/p99 over every non-admin sample).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import tempfile
import time
from pathlib import Path

from bench.harness import percentiles
from bot import CommandCenter
from domain import incidents as ops
from domain.playbooks import StageDraft, StepDraft, new_playbook
from sandbox import Sandbox
from settings import Settings
from storage import open_store

SEED = Path(__file__).resolve().parents[1] / "sandbox" / "seeds" / "demo.yaml"
T0 = 1_700_000_000_000
BATCH = 1000


def _playbook(team_id: str, creator: str, public: bool):
    stages = [StageDraft(title=f"Stage {s + 1}", steps=tuple(StepDraft(title=f"Step {s + 1}.{n + 1}")
                                                             for n in range(5))) for s in range(4)]
    return new_playbook(team_id=team_id, title="Public plan" if public else "Private plan", created_by=creator,
                        now=T0, create_public_channel=public, member_ids=[creator], stages=stages)


async def build_world(sandbox: Sandbox, database_url: str, public: int, shared: int, hidden: int) -> int:
    """Channels in the sandbox and incidents in the store; returns how many dave can see."""
    world = sandbox.world
    team_id = sandbox.team("acme")["id"]
    bot_id, alice, dave = sandbox.user_id("incident"), sandbox.user_id("alice"), sandbox.user_id("dave")
    kinds = ["public"] * public + ["shared"] * shared + ["hidden"] * hidden
    random.Random(7).shuffle(kinds)  # every page mixes public and private incidents
    store = await open_store(database_url)
    try:
        playbooks = {True: await store.create_playbook(_playbook(team_id, alice, True)),
                     False: await store.create_playbook(_playbook(team_id, alice, False))}
        for start in range(0, len(kinds), BATCH):
            async with store.transaction():
                for number in range(start, min(start + BATCH, len(kinds))):
                    kind = kinds[number]
                    is_public = kind == "public"
                    channel = world.create_channel(team_id=team_id, name=f"incident-{number}",
                                                   display_name=f"Incident {number}",
                                                   ctype="O" if is_public else "P", creator_id=bot_id)
                    world.add_member(channel, alice, bot_id)
                    if kind == "shared":
                        world.add_member(channel, dave, bot_id)
                    incident, events = ops.start_incident(
                        playbooks[is_public], name=f"Incident {number}", channel_id=channel["id"], creator_id=alice,
                        now=T0 + number * 1000)
                    if number % 4 == 0:
                        incident, more = ops.end_incident(incident, alice, T0 + number * 1000 + 500)
                        events = [*events, *more]
                    await store.create_incident(incident, events)
    finally:
        await store.close()
    return public + shared


async def measure(user, text: str, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        result = await user.command("town-square", text)
        samples.append((time.perf_counter() - started) * 1000)
        if result.status != 200 or not result.ephemeral or "| **" not in result.ephemeral[0]:
            raise RuntimeError(f"{text!r} failed: {result.status} {result.error} {result.ephemeral[:1]}")
    return samples


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("mattermostautodriver", "mattermostautodriver.websocket", "command_center", "httpx"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="cc-bench-list-") as data_dir:
        async with Sandbox(SEED) as sandbox:
            settings = Settings(mattermost_url=sandbox.url, bot_token=sandbox.token_of("incident"),
                                listen_host="127.0.0.1", listen_port=0, data_dir=Path(data_dir),
                                log_level="WARNING", request_timeout=30.0)
            started = time.perf_counter()
            visible = await build_world(sandbox, settings.effective_database_url, args.public, args.shared,
                                        args.hidden)
            print(f"world: {args.public} public + {args.shared} shared + {args.hidden} hidden incidents "
                  f"({visible} visible to dave), built in {time.perf_counter() - started:.1f} s")
            app = CommandCenter(settings)
            await app.start()
            try:
                await app.wait_connected()
                dave, alice = sandbox.user("dave"), sandbox.user("alice")
                await measure(dave, "/incident list", 3)  # warm-up: connections, caches of names
                scenarios = [("first page", dave, "/incident list"),
                             ("page 2", dave, "/incident list --page 2"),
                             ("page 50", dave, "/incident list --page 50"),
                             ("ongoing", dave, "/incident list ongoing"),
                             ("search", dave, "/incident list --search 12"),
                             ("admin first page", alice, "/incident list")]
                everything: list[float] = []
                for label, user, text in scenarios:
                    samples = await measure(user, text, args.rounds)
                    p50, p99 = percentiles(samples)
                    print(f"{label:>17}: p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   ({text})")
                    if user is dave:
                        everything += samples
                p50, p99 = percentiles(everything)
            finally:
                await app.stop()
    print(f"list_visible={visible} list_p50_ms={p50:.1f} list_p99_ms={p99:.1f}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--public", type=int, default=9000)
    parser.add_argument("--shared", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))

"""The whole start flow and a step toggle by button, through the sandbox, at 1 and 20 concurrent users.

Start flow = `/incident start` (dialog opens) → submit → channel created, members added, posts made,
card pinned.  Dialog open = from typing `/incident start` to the dialog reaching the user; it must stay
well under the 3 s a trigger id lives on older servers.  Toggle = a click on a step's Check/Uncheck
button until the card shows the new state.
The bot runs as its own process (`python bot.py`), the sandbox in this one.

python -m bench.incident [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.harness import EDIT_TIME_LIMIT, bot_process, percentiles, world
from sandbox import Sandbox, SandboxConfig

USERS = 20


async def create_playbook(person, index: int) -> None:
    result = await person.command("town-square", f'/incident playbook create incident-response "Bench {index}"')
    assert result.dialog is not None, (result.ephemeral, result.error)
    outcome = await person.submit_dialog({"template": "incident-response", "title": f"Bench {index}",
                                          "description": None, "channel": None})
    assert outcome.closed, (outcome.errors, outcome.error)


async def start_flow(sandbox: Sandbox, person, name: str) -> tuple[float, float, str]:
    """(whole start flow ms, dialog open ms, card post id)."""
    opened: list[float] = []

    def on_event(event) -> None:
        if event.event == "open_dialog" and not opened:
            opened.append(time.perf_counter())

    unsubscribe = sandbox.world.subscribe(person.id, on_event)
    started = time.perf_counter()
    try:
        result = await person.command("town-square", f"/incident start {name}")
    finally:
        unsubscribe()
    assert result.dialog is not None and opened, (result.ephemeral, result.error)
    playbook = result.dialog["dialog"]["elements"][0]["options"][0]["value"]
    outcome = await person.submit_dialog({"playbook": playbook, "name": name, "description": None})
    assert outcome.closed, (outcome.errors, outcome.error)
    channel = await sandbox.wait_for(lambda: sandbox.channel("acme", name.lower()), timeout=10)
    pinned = await sandbox.wait_for(lambda: sandbox.pinned(channel["id"]), timeout=10)
    return (time.perf_counter() - started) * 1000, (opened[0] - started) * 1000, pinned[0]["id"]


async def toggle(sandbox: Sandbox, person, card_id: str, channel_id: str) -> float:
    card = next(p for p in sandbox.pinned(channel_id) if p["id"] == card_id)
    step = card["props"]["attachments"][2]
    action = step["actions"][0]
    done_before = step["text"].startswith("✅")
    started = time.perf_counter()
    result = await person.click(card_id, action["id"])
    assert result.status == 200 and not result.ephemeral, (result.error, result.ephemeral)

    def flipped():
        now = next(p for p in sandbox.pinned(channel_id) if p["id"] == card_id)
        return now["props"]["attachments"][2]["text"].startswith("✅") != done_before

    await sandbox.wait_for(flipped, timeout=10)
    return (time.perf_counter() - started) * 1000


async def main(rounds: int) -> None:
    figures: dict[str, float] = {}
    async with Sandbox(world(USERS), config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sandbox:
        people = [sandbox.user(f"u{i:03d}") for i in range(USERS)]
        async with bot_process(sandbox.url):
            for index, person in enumerate(people):
                await create_playbook(person, index)
            counter = iter(range(10**6))
            for concurrency in (1, 20):
                starts: list[float] = []
                dialogs: list[float] = []
                toggles: list[float] = []
                cards: list[tuple[object, str, str]] = []

                async def starter(person) -> None:
                    for _ in range(rounds):
                        name = f"bench-{next(counter)}"
                        elapsed, dialog_ms, card_id = await start_flow(sandbox, person, name)
                        starts.append(elapsed)
                        dialogs.append(dialog_ms)
                        cards.append((person, card_id, sandbox.channel("acme", name)["id"]))

                await asyncio.gather(*(starter(p) for p in people[:concurrency]))

                async def toggler(person, card_id: str, channel_id: str) -> None:
                    for _ in range(rounds * 2):
                        toggles.append(await toggle(sandbox, person, card_id, channel_id))

                mine = {}
                for person, card_id, channel_id in cards:
                    mine.setdefault(person, (card_id, channel_id))
                await asyncio.gather(*(toggler(p, c, ch) for p, (c, ch) in list(mine.items())[:concurrency]))
                for name, samples in (("start", starts), ("dialog_open", dialogs), ("toggle", toggles)):
                    p50, p99 = percentiles(samples)
                    figures[f"{name}_c{concurrency}_p50_ms"] = p50
                    figures[f"{name}_c{concurrency}_p99_ms"] = p99
                    print(f"{name:>11} at {concurrency:>2} users: n={len(samples):>3} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms")
    print(" ".join(f"{key}={value:.1f}" for key, value in figures.items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="incidents started per user at each level")
    asyncio.run(main(parser.parse_args().rounds))

"""The whole start flow and a step toggle by button, through the sandbox, at 1 and 20 concurrent users.

Start flow = `/incident start` (dialog opens) → submit → channel created, members added, posts made,
card pinned.  Dialog open = from typing `/incident start` to the dialog reaching the user; it must stay
well under the 3 s a trigger id lives on older servers.  Toggle = a click on a step's Check/Uncheck
button until the card shows the new state.
The bot runs as its own process (`python bot.py`), the sandbox in this one.

Cost figures, from the one-user phase (the sandbox records every REST exchange then):
  rest_calls_per_start / rest_calls_per_toggle   the bot's REST calls (its token) per start / per toggle
  bot_cpu_ms_per_start     CPU of the whole bot process (/proc, each thread's nanosecond count) over the
                           one-user starts ÷ starts
  bare_cpu_ms_per_call     CPU per call of the same REST calls through a bare aiohttp client: a minimal
                           "bot" (bench/barebot.py, its own process too) replays the calls the bot made for
                           one start, with this start's ids, and times process CPU inside each call
  bot_cpu_ratio            bot_cpu_ms_per_start ÷ (bare_cpu_ms_per_call × rest_calls_per_start); goal ≤ 3
  start_c20_p99_ratio      our start p99 at 20 users ÷ the bare bot's, same users, same calls; goal ≤ 1.5.
                           The bare bot holds the bot's WebSocket as every real bot does (connects,
                           authenticates, reads and drops every event), so the sandbox pushes it the same
                           events it pushes ours
  start_c20_p99_ratio_bare_without_ws   the same ratio against a bare bot without a WebSocket (the figure
                           before: the sandbox then has no events to push to the bare bot at all)

What the figures are made of (same runs):
  bot_main_cpu_ms_per_start    the bot's event-loop thread (REST, inbound HTTP, WebSocket, rendering, rules,
                               and SQLite's small writes, which that thread runs itself: storage/README.md)
  bot_store_cpu_ms_per_start   the bot's other threads: SQLite's (aiosqlite runs each connection on its own
                               thread: the writes it is handed, reads of lists; a committed write is an
                               fsync), which the bare bot does not have
  sandbox_cpu_ms_per_start_c20 / bare_sandbox_cpu_ms_per_start_c20   CPU of this process (the sandbox and
                               the simulated users) per start at 20 users, with our bot and with the bare
                               one: the sandbox shares the machine's cores with the bot it serves, so its
                               extra work for our bot (the WebSocket events it pushes, the bot's own
                               requests) is in our p99 too

With ``--profile FILE`` the bot runs under cProfile (bench/profiled_bot.py) during the one-user starts
only (its event-loop thread; cProfile slows it, so the CPU figures of such a run are not comparable):
the statistics go to FILE, the top functions by own time are printed, and ``profile_*_share`` lines
say which part of the bot the event loop's time per start went to.

With ``--loop uvloop`` the bot runs on uvloop (``CC_EVENT_LOOP=uvloop``); the bare bot stays on asyncio.

With ``--cost-only`` only the one-user phases run (the cost figures and ``bot_cpu_ratio``, no 20-user
figures): short enough to alternate many times with another version on a shared machine.

python -m bench.incident [--rounds 5] [--profile FILE] [--loop asyncio|uvloop] [--cost-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from bench.harness import (
    BOT_TOKEN,
    EDIT_TIME_LIMIT,
    ROOT,
    bot_process,
    found,
    percentiles,
    stop_process,
    thread_cpu_seconds,
    world,
)
from gateway.commands import desired_command
from sandbox import Sandbox, SandboxConfig

USERS = 20


async def create_playbook(person, index: int) -> None:
    result = await person.command("town-square", f'/incident playbook create incident-response "Bench {index}"')
    assert result.dialog is not None, (result.ephemeral, result.error)
    outcome = await person.submit_dialog({"template": "incident-response", "title": f"Bench {index}",
                                          "description": None, "channel": None})
    assert outcome.closed, (outcome.errors, outcome.error)


async def start_flow(sandbox: Sandbox, person, name: str, trigger: str = "incident") -> tuple[float, float, str]:
    """(whole start flow ms, dialog open ms, card post id)."""
    opened: list[float] = []

    def on_event(event) -> None:
        if event.event == "open_dialog" and not opened:
            opened.append(time.perf_counter())

    unsubscribe = sandbox.world.subscribe(person.id, on_event)
    started = time.perf_counter()
    try:
        result = await person.command("town-square", f"/{trigger} start {name}")
    finally:
        unsubscribe()
    dialog = result.dialog
    assert dialog is not None and opened, (result.ephemeral, result.error)
    playbook = dialog["dialog"]["elements"][0]["options"][0]["value"]
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


def _bot_exchanges(exchanges) -> list:
    return [e for e in exchanges if e.headers.get("Authorization") == f"Bearer {BOT_TOKEN}"]


def _json(raw: bytes):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def start_template(exchanges, sandbox: Sandbox, person, name: str) -> dict:
    """The bot's calls for the last start in ``exchanges``: those made while the slash command was
    handled and those made while the dialog submission was handled (an exchange is recorded when
    its answer is complete, so the bot's calls come before the user's request that caused them)."""
    commands = [i for i, e in enumerate(exchanges) if e.path == "/api/v4/commands/execute"
                and e.headers.get("Authorization") != f"Bearer {BOT_TOKEN}" and name.encode() in e.body]
    command_at = commands[-1]
    submit_at = next(i for i, e in enumerate(exchanges) if i > command_at and e.path == "/api/v4/actions/dialogs/submit")
    before = max(i for i, e in enumerate(exchanges[:command_at]) if e.headers.get("Authorization")
                 != f"Bearer {BOT_TOKEN}") if any(e.headers.get("Authorization") != f"Bearer {BOT_TOKEN}"
                                                 for e in exchanges[:command_at]) else -1

    def calls(part) -> list[dict]:
        return [{"method": e.method, "path": e.path, "query": e.query, "body": _json(e.body),
                 "response": _json(e.response_body)} for e in _bot_exchanges(part)]

    command_calls, dialog_calls = calls(exchanges[before + 1:command_at]), calls(exchanges[command_at + 1:submit_at])
    opened = next(c["body"] for c in command_calls if c["path"] == "/api/v4/actions/dialogs/open")
    dialog_url = opened["url"]
    bot_url = dialog_url[:dialog_url.index("/", len("http://"))]
    return {"bot_id": sandbox.user_id("incident"), "user_id": person.id, "username": person.username,
            "name": name, "trigger_id": opened["trigger_id"], "bot_url": bot_url,
            "command": command_calls, "dialog": dialog_calls}


def _process_seconds(pid: int) -> float:
    """CPU of a process's threads (nanosecond counts where the kernel keeps them)."""
    return sum(seconds for _, seconds in thread_cpu_seconds(pid).values())


def _split_threads(pid: int, before: dict[int, tuple[str, float]],
                   after: dict[int, tuple[str, float]]) -> tuple[float, float]:
    """(ms of the main thread, ms of every other thread) between two ``thread_cpu_seconds`` readings."""
    main = other = 0.0
    for tid, (_, seconds) in after.items():
        spent = (seconds - before.get(tid, ("", 0.0))[1]) * 1000
        if tid == pid:
            main += spent
        else:
            other += spent
    return main, other


@asynccontextmanager
async def barebot_process(template: dict, sandbox: Sandbox, trigger: str, *, websocket: bool):
    """Run bench/barebot.py with ``template``; register /``trigger`` for it; yield (process, stats())."""
    with tempfile.TemporaryDirectory(prefix="cc-barebot-") as folder:
        path = Path(folder) / "template.json"
        path.write_text(json.dumps(template))
        process = subprocess.Popen([sys.executable, "-m", "bench.barebot", str(path), sandbox.url, BOT_TOKEN,
                                    *(["ws"] if websocket else [])],
                                   cwd=str(ROOT), stdout=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None
            line = await asyncio.to_thread(process.stdout.readline)
            url = line.strip().split("url=", 1)[1]
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {BOT_TOKEN}"}) as http:
                command = desired_command(found(sandbox.team("acme"), "team acme")["id"], trigger, url)
                async with http.post(sandbox.url + "/api/v4/commands", json=command) as answer:
                    assert answer.status == 201, (answer.status, await answer.text())

                async def stats() -> dict:
                    async with http.post(url + "/stats", json={}) as answer:
                        return await answer.json()

                yield process, stats
        finally:
            stop_process(process)


#: Where the event loop's time goes, by the file a function is in (first match wins; the rest is "other").
PROFILE_PARTS = (
    ("signing", ("gateway/signing.py",)),
    ("card", ("gateway/cards.py", "gateway/ui.py", "gateway/messages.py", "domain/freshness.py")),
    ("payloads", ("gateway/payloads.py", "pydantic")),
    ("json", ("json/",)),
    ("rest", ("gateway/client.py", "gateway/transport.py", "aiohttp/client", "aiohttp/connector",
              "mattermostautodriver", "httpx", "httpcore")),
    ("inbound", ("gateway/inbound.py", "gateway/routing.py", "aiohttp/web")),
    ("websocket", ("gateway/events.py", "mmpy_bot", "aiohttp/_websocket", "aiohttp/client_ws")),
    ("store", ("storage/", "aiosqlite")),
    ("asyncio", ("asyncio/",)),
    ("logging", ("logging/",)),
)


async def _profile_written(path: str, timeout: float = 30.0) -> None:
    """Wait until the profiled bot has written its statistics (their size stops changing)."""
    deadline, size = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        now = Path(path).stat().st_size if Path(path).exists() else -1
        if now > 0 and now == size:
            return
        size = now
        await asyncio.sleep(0.2)  # a benchmark polling a file, not a test's synchronisation
    raise RuntimeError(f"the profiled bot wrote no statistics to {path}")


def profile_report(path: str, starts: int) -> dict[str, float]:
    """Print the top functions by own time; return ``profile_<part>_ms_per_start`` by PROFILE_PARTS."""
    import pstats

    stats = pstats.Stats(path)
    stats.sort_stats("tottime").print_stats(25)
    parts: dict[str, float] = {name: 0.0 for name, _ in PROFILE_PARTS}
    parts["other"] = 0.0
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        part = next((name for name, needles in PROFILE_PARTS if any(n in filename for n in needles)), "other")
        parts[part] += tottime
    return {f"profile_{name}_ms_per_start": seconds * 1000 / starts for name, seconds in parts.items()}


async def main(rounds: int, profile: str | None = None, loop: str = "asyncio", *, cost_only: bool = False) -> None:
    figures: dict[str, float] = {}
    levels = (1,) if cost_only else (1, 20)
    async with Sandbox(world(USERS), config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sandbox:
        people = [sandbox.user(f"u{i:03d}") for i in range(USERS)]
        counter = iter(range(10**5))

        def next_name() -> str:
            return f"bench-{next(counter):05d}"  # one width: no name is the beginning of another

        async with bot_process(sandbox.url, profile_out=profile, settings={"CC_EVENT_LOOP": loop}) as (process, _):
            for index, person in enumerate(people):
                await create_playbook(person, index)
            for concurrency in levels:
                starts: list[float] = []
                dialogs: list[float] = []
                toggles: list[float] = []
                cards: list[tuple[object, str, str]] = []
                last_start: list[tuple[object, str]] = []

                async def starter(person) -> None:
                    for _ in range(rounds):
                        name = next_name()
                        elapsed, dialog_ms, card_id = await start_flow(sandbox, person, name)
                        starts.append(elapsed)
                        dialogs.append(dialog_ms)
                        cards.append((person, card_id, found(sandbox.channel("acme", name), name)["id"]))
                        last_start[:] = [(person, name)]

                measuring = concurrency == 1  # the cost figures come from the one-user phase
                if measuring:
                    sandbox.clear_recording()
                    sandbox.config.record = True
                    threads_before = thread_cpu_seconds(process.pid)
                    if profile:
                        process.send_signal(signal.SIGUSR1)
                here_before = time.process_time()
                await asyncio.gather(*(starter(p) for p in people[:concurrency]))
                if not measuring:
                    figures["sandbox_cpu_ms_per_start_c20"] = (time.process_time() - here_before) * 1000 / len(starts)
                if measuring:
                    if profile:
                        Path(profile).unlink(missing_ok=True)
                        process.send_signal(signal.SIGUSR2)
                        await _profile_written(profile)
                        figures.update(profile_report(profile, len(starts)))
                    main_ms, other_ms = _split_threads(process.pid, threads_before, thread_cpu_seconds(process.pid))
                    bot_cpu_ms = main_ms + other_ms
                    figures["bot_main_cpu_ms_per_start"] = main_ms / len(starts)
                    figures["bot_store_cpu_ms_per_start"] = other_ms / len(starts)
                    start_exchanges = list(sandbox.recording)
                    sandbox.clear_recording()
                    figures["rest_calls_per_start"] = len(_bot_exchanges(start_exchanges)) / len(starts)
                    figures["bot_cpu_ms_per_start"] = bot_cpu_ms / len(starts)
                    template = start_template(start_exchanges, sandbox, *last_start[0])

                async def toggler(person, card_id: str, channel_id: str) -> None:
                    for _ in range(rounds * 2):
                        toggles.append(await toggle(sandbox, person, card_id, channel_id))

                mine: dict[object, tuple[str, str]] = {}
                for person, card_id, channel_id in cards:
                    mine.setdefault(person, (card_id, channel_id))
                await asyncio.gather(*(toggler(p, c, ch) for p, (c, ch) in list(mine.items())[:concurrency]))
                if measuring:
                    figures["rest_calls_per_toggle"] = len(_bot_exchanges(sandbox.recording)) / len(toggles)
                    sandbox.config.record = False
                    sandbox.clear_recording()
                for name, samples in (("start", starts), ("dialog_open", dialogs), ("toggle", toggles)):
                    p50, p99 = percentiles(samples)
                    figures[f"{name}_c{concurrency}_p50_ms"] = p50
                    figures[f"{name}_c{concurrency}_p99_ms"] = p99
                    print(f"{name:>11} at {concurrency:>2} users: n={len(samples):>3} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms")

        # The same calls for the same users through a bare aiohttp client (our bot is stopped by now):
        # first holding the WebSocket like any bot (the figures), then without one (suffix _without_ws).
        for trigger, websocket, suffix in (("bare", True, ""), ("barenows", False, "_without_ws")):
            async with barebot_process(template, sandbox, trigger, websocket=websocket) as (bare, stats):
                for concurrency in levels:
                    before, cpu_before = await stats(), _process_seconds(bare.pid)
                    here_before = time.process_time()
                    bare_starts: list[float] = []

                    async def bare_starter(person, trigger: str = trigger) -> None:
                        for _ in range(rounds):
                            bare_starts.append((await start_flow(sandbox, person, next_name(), trigger=trigger))[0])

                    await asyncio.gather(*(bare_starter(p) for p in people[:concurrency]))
                    after = await stats()
                    if concurrency == 20:
                        figures[f"bare_sandbox_cpu_ms_per_start_c20{suffix}"] = (
                            (time.process_time() - here_before) * 1000 / len(bare_starts))
                    if concurrency == 1:
                        calls = after["rest_calls"] - before["rest_calls"]
                        figures[f"bare_cpu_ms_per_call{suffix}"] = (
                            (after["rest_cpu_s"] - before["rest_cpu_s"]) * 1000 / calls)
                        figures[f"bare_rest_calls_per_start{suffix}"] = calls / len(bare_starts)
                        figures[f"bare_bot_cpu_ms_per_start{suffix}"] = (
                            (_process_seconds(bare.pid) - cpu_before) * 1000 / len(bare_starts))
                        if websocket:
                            figures["bare_ws_events_per_start"] = (after["events"] - before["events"]) / len(bare_starts)
                    p50, p99 = percentiles(bare_starts)
                    figures[f"bare_start_c{concurrency}_p50_ms{suffix}"] = p50
                    figures[f"bare_start_c{concurrency}_p99_ms{suffix}"] = p99
                    print(f" bare start{' (no ws)' if suffix else ''} at {concurrency:>2} users: n={len(bare_starts):>3} "
                          f"p50 {p50:7.1f} ms  p99 {p99:7.1f} ms")
    figures["bot_cpu_ratio"] = figures["bot_cpu_ms_per_start"] / (
        figures["bare_cpu_ms_per_call"] * figures["rest_calls_per_start"])
    if 20 in levels:
        figures["start_c20_p99_ratio"] = figures["start_c20_p99_ms"] / figures["bare_start_c20_p99_ms"]
        figures["start_c20_p99_ratio_bare_without_ws"] = (
            figures["start_c20_p99_ms"] / figures["bare_start_c20_p99_ms_without_ws"])
    print(f"per start: {figures['rest_calls_per_start']:.1f} REST calls, bot CPU {figures['bot_cpu_ms_per_start']:.1f} ms; "
          f"bare aiohttp {figures['bare_cpu_ms_per_call']:.3f} ms CPU per call")
    print(" ".join(f"{key}={value:.2f}" if "ratio" in key or "bare_cpu" in key else f"{key}={value:.1f}"
                   for key, value in figures.items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="incidents started per user at each level")
    parser.add_argument("--profile", metavar="FILE", help="profile the bot's one-user starts into FILE (cProfile)")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="the bot's CC_EVENT_LOOP")
    parser.add_argument("--cost-only", action="store_true",
                        help="only the one-user phases: the CPU figures and bot_cpu_ratio, in a few seconds")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rounds, arguments.profile, arguments.loop, cost_only=arguments.cost_only))

"""The live card's cost: REST calls per minute to keep 200 ongoing incidents' durations moving.

200 incidents are started through the real start flow (sandbox and bot in this process, so both
read the same simulated clock), then simulated time is moved on minute by minute and the bot's
scheduler runs what is due. Counted: the bot's REST calls while nobody does anything, per simulated
minute, in the first hour (a refresh a minute per incident, the worst case), between 1 h and 24 h
(every 5 minutes) and after a day (hourly); with no PostEditTimeLimit (the server default) and with
a 300 s limit (ticks stop once a card's window closes). Also: the largest number of calls in any
one second (spreading) and the bot's CPU per tick (rendering and comparing a card).

python -m bench.livecard [--incidents 200] [--minutes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path

from bench.harness import BOT_TOKEN, found, world
from bot import CommandCenter
from sandbox import Sandbox, SandboxConfig
from services.incidents import StartRequest
from settings import Settings


async def _started(app: CommandCenter, sandbox: Sandbox, count: int) -> list:
    from domain.playbooks import StageDraft, StepDraft, new_playbook

    owner = sandbox.user_id("u000")
    team_id = found(sandbox.team("acme"), "team acme")["id"]
    playbook = await app.store.create_playbook(new_playbook(
        team_id=team_id, title="Bench", created_by=owner, now=int(time.time() * 1000), create_public_channel=True,
        member_ids=[owner], stages=[StageDraft(title=f"Stage {s}", steps=tuple(
            StepDraft(title=f"Step {s}.{n}", command="") for n in range(4))) for s in range(3)]))
    service = found(app.incidents, "incident service (is the bot started?)")
    incidents = []
    for index in range(count):
        incidents.append(await service.start(StartRequest(actor_id=owner, team_id=team_id,
                                                                playbook_id=playbook.id, name=f"bench {index}")))
    return incidents


async def measure(count: int, minutes: int, limit: int) -> dict[str, float]:
    token_header = f"Bearer {BOT_TOKEN}"
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="cc-bench-") as data_dir:
        config = SandboxConfig(record=True, post_edit_time_limit=limit)
        async with Sandbox(world(4), config=config) as sandbox:
            app = CommandCenter(Settings(mattermost_url=sandbox.url, bot_token=BOT_TOKEN, listen_host="127.0.0.1",
                                         listen_port=0, data_dir=Path(data_dir), log_level="WARNING"))
            await app.start()
            try:
                await app.wait_connected()
                cards = found(app.incidents, "incident service (is the bot started?)").cards
                cards.clock = sandbox.now_ms
                await _started(app, sandbox, count)
                assert app.livecard is not None
                scheduler = app.livecard
                await scheduler.run_due()

                async def minutes_of_ticks(label: str, start_minute: int, span: int, step_s: int = 1) -> None:
                    # Jump to the start of the phase (ticks meanwhile are not counted), then count.
                    target = sandbox.now_ms() + max(0, start_minute * 60_000 - (sandbox.now_ms() - first))
                    sandbox.advance_clock(max(0, target - sandbox.now_ms()) / 1000)
                    await scheduler.run_due()
                    sandbox.clear_recording()
                    ticks_before, cpu_before = scheduler.stats.ticks, cards.tick_cpu_s
                    busiest = 0
                    for _ in range(span * 60 // step_s):
                        before = len(sandbox.recording)
                        sandbox.advance_clock(step_s)
                        await scheduler.run_due()
                        busiest = max(busiest, (len(sandbox.recording) - before) // step_s)
                    calls = [ex for ex in sandbox.recording if ex.headers.get("Authorization") == token_header]
                    figures[f"{label}_max_calls_per_s"] = busiest
                    ticks = scheduler.stats.ticks - ticks_before
                    figures[f"{label}_calls_per_min"] = len(calls) / span
                    figures[f"{label}_ticks"] = ticks
                    figures[f"{label}_cpu_ms_per_tick"] = ((cards.tick_cpu_s - cpu_before) / ticks * 1000) if ticks else 0

                first = min(i.created_at for i in await _ongoing(app))
                await minutes_of_ticks("first_hour", 1, minutes)
                await minutes_of_ticks("day", 120, max(minutes, 30), step_s=5)
                await minutes_of_ticks("later", 48 * 60, max(minutes, 120), step_s=30)
                figures["edits"] = scheduler.stats.edited
                figures["unchanged"] = scheduler.stats.unchanged
                figures["locked"] = scheduler.stats.locked
            finally:
                await app.stop()
    return figures


async def _ongoing(app: CommandCenter) -> list:
    from domain.models import IncidentStatus

    found = []
    for team_id in app.tokens.teams():
        page = await app.store.list_incidents(team_id, is_admin=True, status=IncidentStatus.ONGOING, per_page=100)
        found += page.items
        number = 1
        while len(found) < page.total:
            found += (await app.store.list_incidents(team_id, is_admin=True, status=IncidentStatus.ONGOING,
                                                     per_page=100, page=number)).items
            number += 1
    return found


async def main(count: int, minutes: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    unlimited = await measure(count, minutes, -1)
    limited = await measure(count, minutes, 300)
    for name, figures in (("PostEditTimeLimit -1", unlimited), ("PostEditTimeLimit 300 s", limited)):
        print(f"{name}: {count} ongoing incidents")
        print(f"  first hour  : {figures['first_hour_calls_per_min']:7.1f} REST calls/min "
              f"({figures['first_hour_ticks']:.0f} ticks, {figures['first_hour_cpu_ms_per_tick']:.2f} ms CPU per tick)")
        print(f"  1 h to 24 h : {figures['day_calls_per_min']:7.1f} REST calls/min")
        print(f"  after a day : {figures['later_calls_per_min']:7.1f} REST calls/min")
        print(f"  edits {figures['edits']:.0f}, skipped unchanged {figures['unchanged']:.0f}, "
              f"skipped past the edit limit {figures['locked']:.0f}; most calls in one simulated second: "
              f"{figures['first_hour_max_calls_per_s']:.0f}")
    print(f"card_refresh_calls_per_min_{count}_ongoing={unlimited['first_hour_calls_per_min']:.1f} "
          f"card_refresh_calls_per_min_{count}_ongoing_after_1h={unlimited['day_calls_per_min']:.1f} "
          f"card_refresh_calls_per_min_{count}_ongoing_after_24h={unlimited['later_calls_per_min']:.1f} "
          f"card_refresh_calls_per_min_{count}_ongoing_edit_limit_300s={limited['first_hour_calls_per_min']:.1f} "
          f"cpu_ms_per_tick={unlimited['first_hour_cpu_ms_per_tick']:.2f} "
          f"max_calls_in_one_second={unlimited['first_hour_max_calls_per_s']:.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--incidents", type=int, default=200)
    parser.add_argument("--minutes", type=int, default=10, help="simulated minutes counted in the first hour")
    args = parser.parse_args()
    asyncio.run(main(args.incidents, args.minutes))

"""The timeline and stats over 10,000 incidents / 1,000,000 timeline events (issue 18).

python -m bench.timeline [--incidents 10000] [--events 100] [--private 0.1] [--rounds 200] [--samples 500]

The world, built once for every figure: one team, a SQLite store holding ``incidents`` incidents
of ``events`` timeline events each (steps checked and unchecked, stage changes, status updates,
follows, members joining, posts pinned and some edited or unpinned; three in four ended, one in
ten of those restarted and ended again), a ``private`` share of them private — the viewer is in
half of those channels. Every incident gets its metrics summary from the store as it is
written (migration 0010), exactly as the bot's writes do.

Measured:

- **timeline render**: one incident's whole timeline as ``/incident timeline --all`` and the report
  draw it — read its events from the store, fold them into entries (domain/timeline.py) and render
  every line (gateway/timeline.py ``render_event``) — ``rounds`` random incidents;
- **timeline page**: one random page of it, as ``/incident timeline [page]`` shows it (read, fold,
  render the page's lines), ``samples`` random incidents;
- **per-post lookup**: ``Store.events_about`` for one post (behind every pin, unpin, edit and
  delete; the indexed lookup), ``samples`` random (incident, post) pairs, found or not;
- **stats**: ``StatsService.stats`` for a non-admin over the last 3,650 days (every incident of the
  team) and for one playbook: the store's summary rows, the visibility filter, the aggregation
  (membership answered as the directory answers it once its member lists are loaded; no Mattermost
  call is made here — ``bench.list`` measures those round trips);
- what a stats request reads: summary rows and their bytes (the selected columns as SQLite returns
  them), and timeline events (none);
- for comparison, once: the same stats computed the old way, from every incident's events.

Ends with key=value lines (milliseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from bench.harness import percentiles
from domain import Actor, limits
from domain import incidents as ops
from domain import timeline as folds
from domain.metrics import MetricsRow, aggregate, summarize
from domain.models import EventKind, Incident, IncidentStatus, TimelineEvent
from domain.playbooks import StageDraft, StepDraft, new_playbook
from gateway.api import MattermostAPI
from gateway.directory import Directory
from gateway.signing import Signer
from gateway.timeline import render_event
from services.context import BotContext
from services.history import HistoryService
from services.stats import StatsService
from settings import Settings
from storage import open_store
from storage.base import Store

T0 = 1_764_590_400_000
TEAM = "team1"
VIEWER = "viewer"
BATCH = 200
NAMES = {f"user{n}": f"user{n}" for n in range(8)}


class _People:
    """The directory's answer to "who is this": a person, not a system admin."""

    async def actor(self, user_id: str) -> Actor:
        return Actor(user_id)


class _Visibility(HistoryService):
    """The history service with membership answered from a set, as the directory answers it once it has
    the member lists (no Mattermost call): what stats cost in the bot beyond them."""

    def __init__(self, ctx: BotContext, member_of: set[str]) -> None:
        super().__init__(ctx, cast(Directory, _People()))
        self.member_of = member_of

    async def teams_of(self, user_id: str, team_id: str) -> list[str]:
        return [team_id]

    async def require_team(self, team_id: str, user_id: str) -> Actor:
        return Actor(user_id)

    async def members_among(self, channel_ids: Iterable[str], user_id: str) -> set[str]:
        return {channel_id for channel_id in channel_ids if channel_id in self.member_of}


def _events(rng: random.Random, incident: Incident, count: int) -> tuple[list[TimelineEvent], Incident]:
    """``count`` events of ``incident`` (its CREATED first) and the incident as they leave it."""
    at = incident.created_at
    steps = [(s, n, step.id, step.title) for s, stage in enumerate(incident.stages) for n, step in enumerate(stage.steps)]
    made = [TimelineEvent(id=f"{incident.id}-0", incident_id=incident.id, at=at, kind=EventKind.CREATED,
                          actor_id="user0", details={"playbook_id": incident.playbook_id, "source_post_id": None})]
    ends = rng.random() < 0.75
    restarts = ends and rng.random() < 0.1
    tail = [EventKind.ENDED, EventKind.RESTARTED, EventKind.ENDED] if restarts else [EventKind.ENDED] if ends else []
    stage = 0
    pinned: list[str] = []  # posts on the timeline now
    for number in range(1, count):
        at += rng.randrange(5_000, 120_000)
        actor = f"user{rng.randrange(8)}"
        if number >= count - len(tail):
            kind = tail[number - (count - len(tail))]
            details: dict[str, Any] = {"duration_ms": at - incident.created_at} if kind is EventKind.ENDED else {}
        else:
            roll = rng.random()
            if roll < 0.6:
                s, n, step_id, title = rng.choice(steps)
                kind = EventKind.STEP_CHECKED if rng.random() < 0.7 else EventKind.STEP_UNCHECKED
                details = {"step_id": step_id, "stage": s, "index": n, "title": title}
            elif roll < 0.7 and stage + 1 < len(incident.stages):
                stage += 1
                kind, details = EventKind.STAGE_CHANGED, {"previous_stage": stage - 1, "stage": stage,
                                                          "title": incident.stages[stage].title}
            elif roll < 0.85:
                kind, details = EventKind.STATUS_UPDATE, {"message": f"Update {number}: still looking into it",
                                                          "next_update_due_at": None, "final": False}
            elif roll < 0.88:
                kind, details = EventKind.FOLLOWED, {}
            elif roll < 0.91:
                kind, details = EventKind.MEMBER_JOINED, {"user_id": actor}
            elif roll < 0.97 or not pinned:
                pinned.append(f"p{number}")
                kind, details = EventKind.POST_ADDED, {
                    "post_id": f"p{number}", "author_id": actor, "excerpt": "Error rate is up " * 8,
                    "permalink": f"https://chat.example.com/acme/pl/p{number}", "via": "reaction"}
            elif roll < 0.985:
                kind, details = EventKind.POST_EDITED, {"post_id": rng.choice(pinned), "excerpt": "edited"}
            else:
                kind, details = EventKind.POST_REMOVED, {"post_id": pinned.pop(rng.randrange(len(pinned)))}
        made.append(TimelineEvent(id=f"{incident.id}-{number}", incident_id=incident.id, at=at, kind=kind,
                                  actor_id=actor, details=details))
    if ends:
        incident = incident.model_copy(update={"status": IncidentStatus.ENDED, "ended_at": at})
    return made, incident.model_copy(update={"active_stage": stage})


async def build(store: Store, incidents: int, events: int, private_share: float) -> set[str]:
    """The world; returns the private channels the viewer is a member of."""
    rng = random.Random(18)
    playbooks = []
    for title in ("Outage", "Security", "Data loss", "Latency"):
        stages = [StageDraft(title=f"Stage {s + 1}", steps=tuple(StepDraft(title=f"Step {s + 1}.{n + 1}")
                                                                 for n in range(5))) for s in range(4)]
        playbooks.append(await store.create_playbook(new_playbook(team_id=TEAM, title=title, created_by="user0",
                                                                  now=T0, stages=stages, member_ids=[VIEWER])))
    member_of: set[str] = set()
    for start in range(0, incidents, BATCH):
        async with store.transaction():
            for number in range(start, min(start + BATCH, incidents)):
                public = rng.random() >= private_share
                channel_id = f"chan{number:06d}"
                if not public and rng.random() < 0.5:
                    member_of.add(channel_id)
                incident, _ = ops.start_incident(rng.choice(playbooks), name=f"Incident {number}",
                                                 channel_id=channel_id, creator_id="user0", public=public,
                                                 now=T0 - (incidents - number) * 60_000, incident_id=f"inc{number:06d}")
                incident = incident.model_copy(update={"field_values": {"severity": rng.choice(["SEV1", "SEV2",
                                                                                                 "SEV3", "SEV4"])}})
                made, incident = _events(rng, incident, events)
                await store.create_incident(incident, made)
    return member_of


def _row_bytes(rows: list[MetricsRow]) -> int:
    """The bytes of the selected columns as SQLite returns them (text as UTF-8, integers as 8)."""
    total = 0
    for row in rows:
        for value in (row.incident_id, row.team_id, row.playbook_id, row.channel_id, row.severity):
            total += len(value.encode()) if value else 0
        total += 8 * 3  # public, created_at, resolve_ms
    return total


async def run(incidents: int, events: int, private_share: float, rounds: int, samples: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cc-bench-timeline-") as tmp:
        path = Path(tmp) / "timeline.db"
        store = await open_store(f"sqlite:///{path}")
        settings = Settings(_env_file=None, mattermost_url="http://127.0.0.1:9", bot_token="x" * 26,
                            data_dir=Path(tmp), signing_secret="s" * 40, telemetry_enabled=False)
        ctx = BotContext(settings=settings, client=cast(MattermostAPI, None), signer=Signer("s" * 40), store=store,
                         clock=lambda: T0)
        try:
            started = time.perf_counter()
            member_of = await build(store, incidents, events, private_share)
            build_s = time.perf_counter() - started
            print(f"# world: {incidents} incidents x {events} events in {build_s:.1f} s", flush=True)
            rng = random.Random(7)
            render_ms: list[float] = []
            lines = 0
            for _ in range(rounds):
                incident_id = f"inc{rng.randrange(incidents):06d}"
                began = time.perf_counter()
                incident = await store.get_incident(incident_id)
                assert incident is not None
                timeline = await store.timeline(incident_id)
                shown = [render_event(entry.event, incident, T0, NAMES, number=entry.number)
                         for entry in folds.entries(timeline)]
                render_ms.append((time.perf_counter() - began) * 1000)
                lines += len(shown)

            page_ms: list[float] = []
            about_ms: list[float] = []
            found = 0
            for _ in range(samples):
                incident_id = f"inc{rng.randrange(incidents):06d}"
                incident = await store.get_incident(incident_id)
                assert incident is not None
                began = time.perf_counter()
                folded = folds.entries(await store.timeline(incident_id))
                pages = max(1, -(-len(folded) // limits.TIMELINE_PER_PAGE))
                items, _ = folds.page_of(folded, rng.randrange(pages), limits.TIMELINE_PER_PAGE)
                text = "\n".join(render_event(e.event, incident, T0, NAMES, number=e.number) for e in items)
                page_ms.append((time.perf_counter() - began) * 1000)
                assert text
                began = time.perf_counter()
                about = await store.events_about(incident_id, f"p{rng.randrange(events)}")
                about_ms.append((time.perf_counter() - began) * 1000)
                found += bool(about)

            service = StatsService(ctx, _Visibility(ctx, member_of))
            stats_ms: list[float] = []
            playbook_ms: list[float] = []
            result = None
            for round_number in range(rounds):
                began = time.perf_counter()
                result = await service.stats(VIEWER, TEAM, days=3650)
                stats_ms.append((time.perf_counter() - began) * 1000)
                began = time.perf_counter()
                await service.stats(VIEWER, TEAM, days=3650, playbook_name=("Outage", "Security")[round_number % 2])
                playbook_ms.append((time.perf_counter() - began) * 1000)
            assert result is not None
            rows = await store.metrics_rows(TEAM, since=T0 - 3650 * 86_400_000)

            # The old way, once: every incident's events read and folded.
            began = time.perf_counter()
            from_events = []
            for row in rows:
                summary = summarize(row.created_at, await store.timeline(row.incident_id))
                from_events.append(row._replace(resolve_ms=summary.resolve_ms))
            recompute_ms = (time.perf_counter() - began) * 1000
            same = aggregate(from_events) == aggregate(rows)
        finally:
            await store.close()

    render_p50, render_p99 = percentiles(render_ms)
    page_p50, page_p99 = percentiles(page_ms)
    about_p50, about_p99 = percentiles(about_ms)
    stats_p50, stats_p99 = percentiles(stats_ms)
    _, playbook_p99 = percentiles(playbook_ms)
    print(f"load_average_1m={os.getloadavg()[0]:.1f}")
    print(f"incidents={incidents}")
    print(f"events={incidents * events}")
    print(f"build_s={build_s:.1f}")
    print(f"timeline_lines_per_render={lines / max(1, rounds):.0f}")
    print(f"timeline_render_p50_ms={render_p50:.2f}")
    print(f"timeline_render_p99_ms={render_p99:.2f}")
    print(f"timeline_page_p50_ms={page_p50:.2f}")
    print(f"timeline_page_p99_ms={page_p99:.2f}")
    print(f"events_about_p50_ms={about_p50:.3f}")
    print(f"events_about_p99_ms={about_p99:.3f}")
    print(f"events_about_found_share={found / max(1, samples):.2f}")
    print(f"stats_counted={result.stats.total.total.count}")
    print(f"stats_p50_ms={stats_p50:.2f}")
    print(f"stats_p99_ms={stats_p99:.2f}")
    print(f"stats_one_playbook_p99_ms={playbook_p99:.2f}")
    print(f"stats_rows_read_per_request={result.rows_read}")
    print(f"stats_bytes_read_per_request={_row_bytes(rows)}")
    print("stats_events_read_per_request=0")
    print(f"stats_from_events_once_ms={recompute_ms:.0f}")
    print(f"stats_summary_equals_events={str(same).lower()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100, help="timeline events per incident")
    parser.add_argument("--private", type=float, default=0.1, help="share of private incidents")
    parser.add_argument("--rounds", type=int, default=200, help="whole timelines rendered, and stats requests")
    parser.add_argument("--samples", type=int, default=500, help="timeline pages rendered, and per-post lookups")
    arguments = parser.parse_args()
    asyncio.run(run(arguments.incidents, arguments.events, arguments.private, arguments.rounds, arguments.samples))


if __name__ == "__main__":
    main()

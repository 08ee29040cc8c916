"""The timeline's cost over a large store (issue 18): a page of ``/incident timeline`` and the
per-post lookup behind every pin, unpin, edit and delete.

python -m bench.timeline_view [--incidents 10000] [--events 100] [--samples 500]

Builds a SQLite store of ``incidents`` incidents with ``events`` timeline events each (1M by
default: step checks, status updates, members, posts pinned and some unpinned or edited), then
measures, for random incidents: reading the timeline, folding it (domain/timeline.py) and
rendering one page (gateway/timeline.py) — what the command does past the permission checks —
and ``Store.events_about`` for one post (the indexed lookup). Prints ``key=value`` lines (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from bench.harness import percentiles
from domain import incidents as ops
from domain import limits
from domain._ops import event
from domain.models import EventKind
from domain.playbooks import StageDraft, StepDraft, new_playbook
from domain.timeline import entries, page_of
from gateway.timeline import render_event
from storage import open_store

T0 = 1_700_000_000_000


def _events(incident, count: int, rng: random.Random) -> list:
    out = []
    for n in range(count):
        at = T0 + n * 30_000
        roll = rng.random()
        if roll < 0.4:
            out.append(event(incident, EventKind.STEP_CHECKED, "alice", at, stage=0, index=n % 3, title="Check it"))
        elif roll < 0.55:
            out.append(event(incident, EventKind.STATUS_UPDATE, "alice", at, message="All good " * 10, final=False))
        elif roll < 0.7:
            out.append(event(incident, EventKind.MEMBER_JOINED, f"u{n}", at, user_id=f"u{n}"))
        elif roll < 0.9:
            out.append(event(incident, EventKind.POST_ADDED, "bob", at - 5000, post_id=f"p{n}", author_id="carol",
                             excerpt="Error rate is up " * 8, permalink=f"https://chat/acme/pl/p{n}", via="reaction"))
        elif roll < 0.95 and n:
            out.append(event(incident, EventKind.POST_EDITED, "carol", at, post_id=f"p{n - 1}", excerpt="edited"))
        else:
            out.append(event(incident, EventKind.POST_REMOVED, "bob", at, post_id=f"p{max(0, n - 2)}"))
    return out


async def main(incidents: int, events: int, samples: int) -> None:
    rng = random.Random(18)
    with tempfile.TemporaryDirectory() as folder:
        store = await open_store(f"sqlite:///{Path(folder) / 'timeline.db'}")
        playbook = new_playbook(team_id="t" * 26, title="Plan", created_by="alice", now=T0, member_ids=["alice"],
                                stages=[StageDraft(title="Triage", steps=tuple(StepDraft(title=f"Step {i}")
                                                                               for i in range(3)))])
        started = time.perf_counter()
        ids = []
        for n in range(incidents):
            incident, created = ops.start_incident(playbook, name=f"Incident {n}", channel_id=f"c{n:025d}",
                                                   creator_id="alice", now=T0)
            await store.create_incident(incident, [*created, *_events(incident, events - 1, rng)])
            ids.append(incident.id)
        build_s = time.perf_counter() - started
        names = {"alice": "alice", "bob": "bob", "carol": "carol"}
        page_ms, about_ms = [], []
        for _ in range(samples):
            incident_id = rng.choice(ids)
            stored = await store.get_incident(incident_id)
            assert stored is not None
            begin = time.perf_counter()
            shown = entries(await store.timeline(incident_id))
            items, _ = page_of(shown, rng.randrange(max(1, -(-len(shown) // limits.TIMELINE_PER_PAGE))),
                               limits.TIMELINE_PER_PAGE)
            text = "\n".join(render_event(e.event, stored, T0 + 10**8, names, number=e.number) for e in items)
            page_ms.append((time.perf_counter() - begin) * 1000)
            assert text
            begin = time.perf_counter()
            await store.events_about(incident_id, f"p{rng.randrange(events)}")
            about_ms.append((time.perf_counter() - begin) * 1000)
        await store.close()
    (page_p50, page_p99), (about_p50, about_p99) = percentiles(page_ms), percentiles(about_ms)
    print(f"incidents={incidents}")
    print(f"events={incidents * events}")
    print(f"build_s={build_s:.1f}")
    print(f"timeline_page_p50_ms={page_p50:.2f}")
    print(f"timeline_page_p99_ms={page_p99:.2f}")
    print(f"events_about_p50_ms={about_p50:.3f}")
    print(f"events_about_p99_ms={about_p99:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.incidents, args.events, args.samples))

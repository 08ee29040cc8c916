"""Crash-test helper for the metrics summaries: ends, restarts, stage changes and status updates
forever (each its own committed write, acknowledged after the commit), plus events appended without
an incident change.

Usage: python metrics_crash_writer.py DB_PATH SEED — prints ``ready``, then ``ack`` after every commit;
tests/storage/test_metrics_crash.py kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from domain import incidents, playbooks, updates
from domain.errors import DomainError
from domain.ids import new_id
from domain.models import EventKind, TimelineEvent
from storage import open_store


async def main(db_path: str, seed: int) -> None:
    rng = random.Random(seed)
    store = await open_store(f"sqlite:///{db_path}")
    stages = [playbooks.StageDraft(title=f"Stage {s}", steps=(playbooks.StepDraft(title="x"),)) for s in range(3)]
    playbook = playbooks.new_playbook(team_id="crash", title=f"Crash {seed}", created_by="w", now=1, stages=stages)
    await store.create_playbook(playbook)
    print("ready", flush=True)
    mine: list[str] = []
    n = 0
    while True:
        n += 1
        if not mine or rng.random() < 0.1:
            incident, events = incidents.start_incident(playbook, name=f"m {seed} {n}", channel_id=f"m-{seed}-{n}",
                                                        creator_id="w", now=n * 1000)
            await store.create_incident(incident, events)
            mine.append(incident.id)
        elif rng.random() < 0.2:
            target = rng.choice(mine)
            await store.append_events([TimelineEvent(id=new_id(), incident_id=target, at=n * 1000,
                                                     kind=EventKind.STATUS_UPDATE, actor_id="w")])
        else:
            choice = rng.randrange(4)

            def operation(current, choice=choice, n=n):
                if choice == 0:
                    return incidents.end_incident(current, "w", n * 1000)
                if choice == 1:
                    return incidents.restart_incident(current, "w", n * 1000)
                if choice == 2:
                    return incidents.set_stage(current, rng.randrange(3), "w", n * 1000)
                return updates.post_update(current, "news", "w", n * 1000, next_in_ms=None)

            try:
                await store.mutate_incident(rng.choice(mine), operation)
            except DomainError:
                continue
        print("ack", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))

"""Crash-test helper: writes incidents and step toggles forever, acknowledging each commit.

Usage: python crash_writer.py DB_PATH SEED

Prints ``ready`` once the store is open, then after every committed transaction one
line ``ack <kind> <incident_id> <event_id>`` (flushed), exactly as a bot would answer a
user only after the commit. The crash test kills this process with SIGKILL.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from domain import checklist, incidents, playbooks
from domain.models import StepRef
from storage import open_store


async def main(db_path: str, seed: int) -> None:
    rng = random.Random(seed)
    store = await open_store(f"sqlite:///{db_path}")
    stage = playbooks.StageDraft(title="Work", steps=tuple(playbooks.StepDraft(title=f"step {n}") for n in range(20)))
    playbook = playbooks.new_playbook(team_id="crash", title="Crash", created_by="w", now=1, stages=[stage])
    await store.create_playbook(playbook)
    print("ready", flush=True)
    mine: list[str] = []
    n = 0
    while True:
        n += 1
        if not mine or rng.random() < 0.25:
            incident, events = incidents.start_incident(
                playbook, name=f"crash {seed} {n}", channel_id=f"c-{seed}-{n}", creator_id="w", now=n
            )
            await store.create_incident(incident, events)
            mine.append(incident.id)
            print(f"ack create {incident.id} {events[0].id}", flush=True)
        else:
            incident_id = rng.choice(mine)
            ref = StepRef(0, rng.randrange(20))

            def flip(current, ref=ref, n=n):
                op = checklist.uncheck_step if current.step(ref).done else checklist.check_step
                return op(current, ref, "w", n)

            _, events = await store.mutate_incident(incident_id, flip)
            print(f"ack toggle {incident_id} {events[0].id}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))

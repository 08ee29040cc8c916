"""The metrics summary under writers side by side (PostgreSQL runs them concurrently; SQLite and memory
one after another): appends from two stores on one database and checklist changes at once each advance
the summary from the latest one, so it still equals the fold of every event, none lost."""

from __future__ import annotations

import asyncio

from domain import checklist
from domain.ids import new_id
from domain.metrics import summarize
from domain.models import EventKind, StepRef, TimelineEvent

from .builders import T0, incident, playbook


def note(incident_id: str, n: int) -> TimelineEvent:
    return TimelineEvent(id=new_id(), incident_id=incident_id, at=T0 + n, kind=EventKind.POST_ADDED,
                         actor_id="bob", details={"post_id": f"p{n}"})


async def test_appends_and_changes_at_once_lose_no_event(store, store_factory):
    other = store_factory()
    await other.open()
    try:
        inc, events = incident(playbook())
        await store.create_incident(inc, events)

        async def appends(on, first: int) -> None:
            for n in range(first, first + 15):
                await on.append_events([note(inc.id, n)])

        async def toggles(on) -> None:
            for n in range(6):
                await on.mutate_incident(inc.id, lambda i: checklist.set_step_state(i, StepRef(0, 0), n % 2 == 0, "bob", T0 + 100 + n))

        await asyncio.gather(appends(store, 0), appends(other, 100), appends(store, 200), toggles(other))
        stored = await store.get_incident(inc.id)
        timeline = await store.timeline(inc.id)
        assert len([e for e in timeline if e.kind is EventKind.POST_ADDED]) == 45
        summary = await other.incident_summary(inc.id)
        assert summary is not None and summary.events == len(timeline)
        assert summary == summarize(stored.created_at, timeline)
    finally:
        await other.close()

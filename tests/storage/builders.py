"""Test data for the store suite."""

from __future__ import annotations

import itertools

from domain import incidents, playbooks
from domain.models import Incident, Playbook, TimelineEvent

T0 = 1_700_000_000_000
_channels = itertools.count(1)


def playbook(team_id: str = "team1", creator: str = "alice", title: str = "Incident Response", **kwargs) -> Playbook:
    """A playbook with two stages of three steps."""
    stages = [
        playbooks.StageDraft(
            title=name, steps=tuple(playbooks.StepDraft(title=f"{name} step {n}") for n in range(1, 4))
        )
        for name in ("Triage", "Resolution")
    ]
    return playbooks.new_playbook(team_id=team_id, title=title, created_by=creator, now=T0, stages=stages, **kwargs)


def incident(
    pb: Playbook | None = None,
    *,
    name: str = "Database down",
    creator: str = "alice",
    public: bool | None = None,
    now: int = T0,
    channel_id: str | None = None,
) -> tuple[Incident, list[TimelineEvent]]:
    """A new incident (not stored) and its creation event."""
    return incidents.start_incident(
        pb or playbook(),
        name=name,
        channel_id=channel_id or f"chan{next(_channels):06d}",
        creator_id=creator,
        now=now,
        public=public,
    )


def writes_on_the_writers_thread(store) -> None:
    """Make a SQLite store hand every write to its writer's thread (as it does when that thread is busy,
    the file is locked by another process, or the disk is slow), so a test can cancel a caller while its
    write is under way there; other backends have no such thread."""
    if hasattr(store, "_inline_writes"):
        store._inline_writes = False

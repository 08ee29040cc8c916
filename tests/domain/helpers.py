"""Builders shared by the domain tests."""

from __future__ import annotations

from domain import incidents, playbooks
from domain.models import Incident, Playbook

T0 = 1_700_000_000_000


def playbook(stages: int = 3, steps: int = 3, *, team_id: str = "team1", creator: str = "alice", public: bool = True) -> Playbook:
    """A playbook with ``stages`` stages of ``steps`` steps; step 1 of each stage has a command."""
    drafts = [
        playbooks.StageDraft(
            title=["Triage", "Investigation", "Resolution", "Review"][s % 4],
            steps=tuple(
                playbooks.StepDraft(title=f"Step {s + 1}.{n + 1}", command="/echo hi" if n == 0 else "")
                for n in range(steps)
            ),
        )
        for s in range(stages)
    ]
    return playbooks.new_playbook(
        team_id=team_id, title="Incident Response", created_by=creator, now=T0, stages=drafts,
        create_public_channel=public,
    )


def incident(stages: int = 3, steps: int = 3, **kwargs) -> Incident:
    """An ongoing incident started by alice from :func:`playbook`."""
    started, _ = incidents.start_incident(
        playbook(stages, steps, **kwargs), name="Database down", channel_id="chan1", creator_id="alice", now=T0
    )
    return started

"""Small helpers shared by the incident and checklist operations."""

from __future__ import annotations

from typing import Any

from .errors import COMMAND, InvalidState
from .ids import new_id
from .models import EventKind, Incident, Stage, Step, TimelineEvent

#: What every operation on an ended incident answers.
ENDED_MESSAGE = f"This incident has ended. Type {COMMAND}restart to reopen it."

Result = tuple[Incident, list[TimelineEvent]]


def require_ongoing(incident: Incident) -> None:
    """Raise InvalidState unless the incident is ongoing."""
    if not incident.is_ongoing:
        raise InvalidState(ENDED_MESSAGE)


def moment_after(now: int, previous: int | None) -> int:
    """``now``, or just after ``previous`` if that is not earlier: the times a state mark carries
    strictly increase, so two changes in one millisecond never give an old mark back."""
    return now if previous is None or now > previous else previous + 1


def event(incident: Incident, kind: EventKind, actor: str, now: int, **details: Any) -> TimelineEvent:
    """A new timeline event for ``incident``."""
    return TimelineEvent(
        id=new_id(), incident_id=incident.id, at=now, kind=kind, actor_id=actor, details=details
    )


def with_stage_steps(incident: Incident, stage: int, steps: list[Step] | tuple[Step, ...]) -> Incident:
    """A copy of ``incident`` whose stage ``stage`` has ``steps``."""
    stages = list(incident.stages)
    stages[stage] = stages[stage].model_copy(update={"steps": tuple(steps)})
    return incident.model_copy(update={"stages": tuple(stages)})


def stage_with_steps(stage: Stage, steps: list[Step]) -> Stage:
    """A copy of ``stage`` with ``steps``."""
    return stage.model_copy(update={"steps": tuple(steps)})

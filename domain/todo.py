"""What one person has to do across incidents (the ``todo`` command, docs/status-updates.md), as pure rules.

Two lists: the open steps assigned to them in ongoing incidents, and the ongoing incidents they
command whose status update is overdue (:func:`domain.updates.overdue`). The store finds the
incidents; these functions say what in them is the person's.
"""

from __future__ import annotations

from typing import NamedTuple

from .models import Incident, Step, StepRef

__all__ = ["MyStep", "has_open_step_of", "open_steps_of"]


class MyStep(NamedTuple):
    """An open step assigned to someone: where it is (0-based) and the step."""

    ref: StepRef
    step: Step


def open_steps_of(incident: Incident, user_id: str) -> list[MyStep]:
    """The open steps of an ongoing incident assigned to ``user_id``, in checklist order (none once
    the incident has ended: its leftover steps are nobody's to do)."""
    if not incident.is_ongoing or not user_id:
        return []
    return [MyStep(StepRef(s, i), step)
            for s, stage in enumerate(incident.stages)
            for i, step in enumerate(stage.steps)
            if step.assignee_id == user_id and not step.done]


def has_open_step_of(incident: Incident, user_id: str) -> bool:
    """True when :func:`open_steps_of` is not empty (the store's query, as a rule)."""
    return bool(open_steps_of(incident, user_id))

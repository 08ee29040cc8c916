"""Marks of the state a card button was drawn for, so that a click on an outdated card changes nothing.

Each button carries the mark of its *own* target only — a step's state for Check/Uncheck/Run, the
active stage for Previous/Next, the incident's status for End/Restart — never a version of the
whole card: two people clicking different buttons at once both succeed, while a click that was
drawn for a state that has moved on (an old card, a double click, a captured click replayed) is
refused before anything is written (see :func:`require_fresh`, run inside the versioned write).
"""

from __future__ import annotations

from .errors import InvalidState
from .models import Incident, Step, StepTarget


class StaleCard(InvalidState):
    """The button was drawn for a state that has changed since."""


def step_mark(step: Step) -> str:
    """A step's state and when it last changed: a check→uncheck cycle gives a new mark."""
    return f"{step.state.value}@{step.state_changed_at or 0}"


def stage_mark(incident: Incident) -> str:
    return f"stage{incident.active_stage}/{len(incident.stages)}"


def status_mark(incident: Incident) -> str:
    return f"{incident.status.value}@{incident.ended_at or 0}"


def require_fresh(incident: Incident, mark: object, *, step: StepTarget | None = None, what: str = "status") -> None:
    """Raise :class:`StaleCard` unless ``mark`` is the current mark of the button's target."""
    if step is not None:
        ref = incident.locate(step)  # NotFound when the step is gone
        current = incident.stages[ref.stage].steps[ref.index]
        if mark != step_mark(current):
            state = "done" if current.done else "open"
            raise StaleCard(f"The card was out of date, so nothing changed: step {ref.label} is {state} now "
                            "(someone changed it since the card was drawn). The card shows the current state.")
        return
    if what == "stage":
        if mark != stage_mark(incident):
            raise StaleCard(f"The card was out of date, so nothing changed: the active stage is now "
                            f"{incident.active_stage + 1}/{len(incident.stages)}. The card shows the current state.")
        return
    if mark != status_mark(incident):
        state = "ongoing" if incident.is_ongoing else "ended"
        raise StaleCard(f"The card was out of date, so nothing changed: the incident is {state} now. "
                        "The card shows the current state.")

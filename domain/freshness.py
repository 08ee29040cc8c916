"""Marks of the state a card button was drawn for, so that a click on an outdated card changes nothing.

Each button carries the mark of its *own* target only — a step's state for Check/Uncheck (and when
its command last ran, for Run), the active stage and when it was set for Previous/Next, the
incident's status and when it was last ended or restarted for End/Restart — never a version of the
whole card: two people clicking different buttons at once both succeed, while a click that was
drawn for a state that has moved on (an old card, a double click, a captured click replayed) is
refused before anything is written (see :func:`require_fresh`, run inside the versioned write).

Marks carry *when* a state was reached, not only the state, so a cycle (check → uncheck, Next →
Previous, End → Restart) never makes an old click current again; the times strictly increase
(``_ops.moment_after``). A time that was never set adds nothing to a mark, so cards drawn before a
field existed keep working.
"""

from __future__ import annotations

from .errors import COMMAND, InvalidState
from .models import Incident, Step, StepTarget


class StaleCard(InvalidState):
    """The button was drawn for a state that has changed since."""


def step_mark(step: Step) -> str:
    """A step's state and when it last changed: a check→uncheck cycle gives a new mark."""
    return f"{step.state.value}@{step.state_changed_at or 0}"


def run_mark(step: Step) -> str:
    """The Run button's mark: the step's state, and when its command last ran."""
    return step_mark(step) + (f"/ran{step.last_run_at}" if step.last_run_at else "")


def stage_mark(incident: Incident) -> str:
    """The active stage and when it was set: Next → Previous gives a new mark."""
    at = f"@{incident.stage_set_at}" if incident.stage_set_at else ""
    return f"stage{incident.active_stage}/{len(incident.stages)}{at}"


def status_mark(incident: Incident) -> str:
    """The status, when it ended and when it was last restarted: End → Restart gives a new mark."""
    again = f"r{incident.restarted_at}" if incident.restarted_at else ""
    return f"{incident.status.value}@{incident.ended_at or 0}{again}"


def require_fresh(incident: Incident, mark: object, *, step: StepTarget | None = None, what: str = "status") -> None:
    """Raise :class:`StaleCard` unless ``mark`` is the current mark of the button's target.

    ``what``: ``"status"``, ``"stage"``, or with ``step`` ``"step"`` (Check/Uncheck) or ``"run"``.
    """
    if step is not None:
        ref = incident.locate(step)  # NotFound when the step is gone
        current = incident.stages[ref.stage].steps[ref.index]
        if mark == (run_mark(current) if what == "run" else step_mark(current)):
            return
        if what == "run" and isinstance(mark, str) and mark.split("/ran")[0] == step_mark(current):
            raise StaleCard(f"The card was out of date, so nothing changed: step {ref.label}'s command has run "
                            "since the card was drawn. Click Run on the current card, or type "
                            f"{COMMAND}run {ref.label}, to run it again.")
        state = "done" if current.done else "open"
        raise StaleCard(f"The card was out of date, so nothing changed: step {ref.label} is {state} now "
                        "(someone changed it since the card was drawn). The card shows the current state.")
    if what == "stage":
        if mark != stage_mark(incident):
            raise StaleCard(f"The card was out of date, so nothing changed: the active stage is now "
                            f"{incident.active_stage + 1}/{len(incident.stages)}. The card shows the current state.")
        return
    if mark != status_mark(incident):
        state = "ongoing" if incident.is_ongoing else "ended"
        raise StaleCard(f"The card was out of date, so nothing changed: the incident is {state} now. "
                        "The card shows the current state.")

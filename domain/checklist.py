"""Pure operations on an incident's own copy of the checklist.

Each operation takes the current incident, the acting user id and ``now`` (ms)
and returns ``(new_incident, events)``. An operation that would change nothing
(checking a done step, renaming to the same title, ...) returns the incident
unchanged and no events, so a double click gives one consistent result.

Ended incidents are read-only: every operation here raises InvalidState
("This incident has ended. Type <the command> restart to reopen it.").

Steps are addressed by :class:`StepRef` (position, as people type it) or by
step id (what buttons carry; ids stay valid when steps move).
"""

from __future__ import annotations

from . import limits, validation
from ._ops import Result, event, moment_after, require_ongoing, with_stage_steps
from .errors import InvalidState, ValidationError
from .ids import new_id
from .models import EventKind, Incident, Step, StepRef, StepState, StepTarget


def _step_details(incident: Incident, ref: StepRef) -> dict:
    step = incident.stages[ref.stage].steps[ref.index]
    return {"step_id": step.id, "stage": ref.stage, "index": ref.index, "title": step.title}


def set_step_state(incident: Incident, target: StepTarget, done: bool, actor: str, now: int) -> Result:
    """Mark a step done (``done=True``) or open; a no-op if it already is."""
    require_ongoing(incident)
    ref = incident.locate(target)
    step = incident.stages[ref.stage].steps[ref.index]
    wanted = StepState.DONE if done else StepState.OPEN
    if step.state is wanted:
        return incident, []
    changed = step.model_copy(
        update={"state": wanted, "state_changed_by": actor,
                "state_changed_at": moment_after(now, step.state_changed_at)}
    )
    steps = list(incident.stages[ref.stage].steps)
    steps[ref.index] = changed
    updated = with_stage_steps(incident, ref.stage, steps)
    kind = EventKind.STEP_CHECKED if done else EventKind.STEP_UNCHECKED
    return updated, [event(incident, kind, actor, now, **_step_details(updated, ref))]


def check_step(incident: Incident, target: StepTarget, actor: str, now: int) -> Result:
    """Mark a step done; checking a done step changes nothing."""
    return set_step_state(incident, target, True, actor, now)


def uncheck_step(incident: Incident, target: StepTarget, actor: str, now: int) -> Result:
    """Mark a step open again; unchecking an open step changes nothing."""
    return set_step_state(incident, target, False, actor, now)


def assign_step(
    incident: Incident,
    target: StepTarget,
    assignee_id: str | None,
    actor: str,
    now: int,
    *,
    assignee_in_channel: bool,
) -> Result:
    """Set (or clear, with ``None``) a step's assignee, who must be in the incident channel."""
    require_ongoing(incident)
    ref = incident.locate(target)
    step = incident.stages[ref.stage].steps[ref.index]
    if assignee_id is not None and not assignee_in_channel:
        raise ValidationError(
            "Steps can only be assigned to members of the incident channel:"
            " add that user to the channel first, then assign the step."
        )
    if step.assignee_id == assignee_id:
        return incident, []
    steps = list(incident.stages[ref.stage].steps)
    steps[ref.index] = step.model_copy(update={"assignee_id": assignee_id})
    updated = with_stage_steps(incident, ref.stage, steps)
    details = _step_details(updated, ref)
    details.update(assignee_id=assignee_id, previous_assignee_id=step.assignee_id)
    return updated, [event(incident, EventKind.STEP_ASSIGNED, actor, now, **details)]


def run_step(incident: Incident, target: StepTarget, actor: str, now: int) -> Result:
    """Record that a step's slash command was run: only its ``last_run_at`` changes (the Run button
    carries it, so a captured Run click cannot run it again)."""
    require_ongoing(incident)
    ref = incident.locate(target)
    step = incident.stages[ref.stage].steps[ref.index]
    if not step.command:
        raise InvalidState(f"Step {ref.label} has no slash command to run.")
    details = _step_details(incident, ref)
    details["command"] = step.command
    steps = list(incident.stages[ref.stage].steps)
    steps[ref.index] = step.model_copy(update={"last_run_at": moment_after(now, step.last_run_at)})
    return with_stage_steps(incident, ref.stage, steps), [event(incident, EventKind.STEP_RUN, actor, now, **details)]


def add_step(
    incident: Incident,
    stage: int,
    title: str,
    actor: str,
    now: int,
    *,
    description: str = "",
    command: str = "",
    assignee_id: str | None = None,
    position: int | None = None,
) -> Result:
    """Add a new open step to stage ``stage`` (0-based) at ``position`` (0-based; default last)."""
    require_ongoing(incident)
    if not 0 <= stage < len(incident.stages):
        raise ValidationError(
            f"Stage {stage + 1} does not exist: choose a stage from 1 to {len(incident.stages)}."
        )
    steps = list(incident.stages[stage].steps)
    if len(steps) >= limits.STEPS_PER_STAGE_MAX:
        raise ValidationError(
            f"{incident.stage_label(stage).capitalize()} already has the maximum of"
            f" {limits.STEPS_PER_STAGE_MAX} steps; remove one before adding another."
        )
    if position is None:
        position = len(steps)
    if not 0 <= position <= len(steps):
        raise ValidationError(
            f"Position {position + 1} is out of range: choose 1 to {len(steps) + 1}."
        )
    step = Step(
        id=new_id(),
        title=validation.step_title(title),
        description=validation.step_description(description),
        command=validation.step_command(command),
        assignee_id=assignee_id,
    )
    steps.insert(position, step)
    updated = with_stage_steps(incident, stage, steps)
    ref = StepRef(stage, position)
    return updated, [event(incident, EventKind.STEP_ADDED, actor, now, **_step_details(updated, ref))]


def remove_step(incident: Incident, target: StepTarget, actor: str, now: int) -> Result:
    """Remove a step from the incident's checklist."""
    require_ongoing(incident)
    ref = incident.locate(target)
    details = _step_details(incident, ref)
    steps = list(incident.stages[ref.stage].steps)
    del steps[ref.index]
    updated = with_stage_steps(incident, ref.stage, steps)
    return updated, [event(incident, EventKind.STEP_REMOVED, actor, now, **details)]


def rename_step(incident: Incident, target: StepTarget, title: str, actor: str, now: int) -> Result:
    """Give a step a new title; the same title changes nothing."""
    require_ongoing(incident)
    ref = incident.locate(target)
    new_title = validation.step_title(title)
    step = incident.stages[ref.stage].steps[ref.index]
    if step.title == new_title:
        return incident, []
    steps = list(incident.stages[ref.stage].steps)
    steps[ref.index] = step.model_copy(update={"title": new_title})
    updated = with_stage_steps(incident, ref.stage, steps)
    details = _step_details(updated, ref)
    details["previous_title"] = step.title
    return updated, [event(incident, EventKind.STEP_RENAMED, actor, now, **details)]


def move_step(
    incident: Incident,
    target: StepTarget,
    new_index: int,
    actor: str,
    now: int,
    *,
    to_stage: int | None = None,
) -> Result:
    """Move a step to 0-based ``new_index`` of its stage, or of ``to_stage`` when given.

    ``new_index`` is the position the step has after the move; moving to the
    place it already has changes nothing.
    """
    require_ongoing(incident)
    ref = incident.locate(target)
    dest = ref.stage if to_stage is None else to_stage
    if not 0 <= dest < len(incident.stages):
        raise ValidationError(
            f"Stage {dest + 1} does not exist: choose a stage from 1 to {len(incident.stages)}."
        )
    dest_len = len(incident.stages[dest].steps)
    if dest == ref.stage:
        last = dest_len - 1
    else:
        last = dest_len
        if dest_len >= limits.STEPS_PER_STAGE_MAX:
            raise ValidationError(
                f"{incident.stage_label(dest).capitalize()} already has the maximum of"
                f" {limits.STEPS_PER_STAGE_MAX} steps; remove one first."
            )
    if not 0 <= new_index <= last:
        raise ValidationError(
            f"Position {new_index + 1} is out of range for {incident.stage_label(dest)}:"
            f" choose 1 to {last + 1}."
        )
    if dest == ref.stage and new_index == ref.index:
        return incident, []
    step = incident.stages[ref.stage].steps[ref.index]
    source_steps = list(incident.stages[ref.stage].steps)
    del source_steps[ref.index]
    updated = with_stage_steps(incident, ref.stage, source_steps)
    dest_steps = list(updated.stages[dest].steps)
    dest_steps.insert(new_index, step)
    updated = with_stage_steps(updated, dest, dest_steps)
    details = {
        "step_id": step.id,
        "title": step.title,
        "stage": dest,
        "index": new_index,
        "from_stage": ref.stage,
        "from_index": ref.index,
    }
    return updated, [event(incident, EventKind.STEP_MOVED, actor, now, **details)]

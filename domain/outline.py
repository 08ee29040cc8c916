"""Quick edits of a playbook's outline: its stages and their steps, as the editors describe them.

Pure: each operation takes the stages (:class:`~domain.playbooks.StageDraft`) and returns the
changed stages with what it did (:class:`OutlineChange`), or raises a :class:`DomainError` that
says what was wrong. Stage numbers and step references are typed by people (``3``, ``2.3``)
and parsed by :mod:`domain.refs`, checked against the stages they address. Every rule of an
outline holds after each edit: at least one stage (a playbook needs one), at most
``limits.STAGES_MAX`` stages and ``limits.STEPS_PER_STAGE_MAX`` steps per stage, and titles,
descriptions and commands within their limits. Errors carry ``field="stages"``.

:func:`apply` runs one :class:`OutlineEdit` (what ``playbook edit <title> step|stage <verb> ...``
asks for); the store write and its version check are the service's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import limits, validation
from .errors import COMMAND, NotFound, ValidationError
from .models import StepRef
from .playbooks import STAGES, StageDraft, StepDraft
from .refs import parse_stage_number, parse_step_ref

Stages = tuple[StageDraft, ...]

#: The words that clear a step's description, command or default assignee.
NONE_WORDS = ("none", "-", "clear")
#: The verbs of each kind of edit; ``delete`` and ``description`` are other names for two of them.
VERBS: dict[str, tuple[str, ...]] = {
    "stage": ("add", "remove", "rename", "move"),
    "step": ("add", "remove", "rename", "move", "describe", "command", "assign"),
}
SYNONYMS = {"delete": "remove", "description": "describe"}


@dataclass(frozen=True)
class OutlineChange:
    """The stages after one edit and what it did.

    ``what`` is ``"<kind> <verb>"`` (``"step move"``); ``label`` the stage number or step
    reference (1-based) the edit left it at; ``before`` where it was (moves and removals);
    ``title`` the title the edit gave or removed (for moves: the step's or stage's title);
    ``value`` the description, command or assignee id set ("" when cleared).
    """

    stages: Stages
    what: str
    label: str
    title: str = ""
    value: str = ""
    before: str = ""


@dataclass(frozen=True)
class OutlineEdit:
    """One edit as typed: ``kind`` (stage or step), ``verb`` and the words after it.

    ``assignee_id`` is the default assignee an ``assign`` sets (resolved from the typed username
    by the caller), None to clear it.
    """

    kind: str
    verb: str
    args: tuple[str, ...] = ()
    assignee_id: str | None = field(default=None)

    @classmethod
    def of(cls, kind: str, verb: str, args: Sequence[str], assignee_id: str | None = None) -> OutlineEdit:
        verb = verb.lower()
        return cls(kind.lower(), SYNONYMS.get(verb, verb), tuple(args), assignee_id)


def _error(message: str) -> ValidationError:
    return ValidationError(message, field=STAGES)


def _stage(stages: Sequence[StageDraft], text: str, *, allow_end: bool = False) -> int:
    """A typed stage number (0-based result); ``allow_end``: one past the last stage too."""
    try:
        return parse_stage_number(text, len(stages) + (1 if allow_end else 0))
    except ValidationError as error:
        raise _error(error.message) from None


def _step(stages: Sequence[StageDraft], text: str) -> StepRef:
    """A typed ``S.N`` step reference that exists in ``stages``."""
    try:
        ref = parse_step_ref(text, None)
    except ValidationError as error:
        raise _error(error.message) from None
    if not 0 <= ref.stage < len(stages):
        raise _error(f"Stage {ref.stage + 1} does not exist: type a number from 1 to {len(stages)}.")
    count = len(stages[ref.stage].steps)
    if not 0 <= ref.index < count:
        raise NotFound(f"Step {ref.label} does not exist: stage {ref.stage + 1} has {count} "
                       f"step{'s' if count != 1 else ''}.", field=STAGES)
    return ref


def _stage_title(text: str) -> str:
    try:
        return validation.stage_title(text)
    except ValidationError as error:
        raise _error(error.message) from None


def _step_field(check: Callable[[str], str], text: str) -> str:
    try:
        return check(text)
    except ValidationError as error:
        raise _error(error.message) from None


def _with_steps(stages: Sequence[StageDraft], index: int, steps: Sequence[StepDraft]) -> Stages:
    changed = list(stages)
    changed[index] = changed[index].model_copy(update={"steps": tuple(steps)})
    return tuple(changed)


def _room_for_step(stages: Sequence[StageDraft], index: int) -> None:
    if len(stages[index].steps) >= limits.STEPS_PER_STAGE_MAX:
        raise _error(f"Stage {index + 1} already has {len(stages[index].steps)} steps, the most a stage may "
                     "have; remove one or add the step to another stage.")


# Stages -------------------------------------------------------------------------------------


def add_stage(stages: Sequence[StageDraft], title: str) -> OutlineChange:
    """A new, empty last stage."""
    if len(stages) >= limits.STAGES_MAX:
        raise _error(f"A playbook may have at most {limits.STAGES_MAX} stages; remove one before adding another.")
    clean = _stage_title(title)
    return OutlineChange((*stages, StageDraft(title=clean)), "stage add", str(len(stages) + 1), clean)


def rename_stage(stages: Sequence[StageDraft], number: str, title: str) -> OutlineChange:
    index = _stage(stages, number)
    clean = _stage_title(title)
    changed = list(stages)
    changed[index] = stages[index].model_copy(update={"title": clean})
    return OutlineChange(tuple(changed), "stage rename", str(index + 1), clean)


def remove_stage(stages: Sequence[StageDraft], number: str) -> OutlineChange:
    """Remove a stage with its steps; the last stage cannot be removed (a playbook needs one)."""
    index = _stage(stages, number)
    if len(stages) <= limits.STAGES_MIN:
        raise _error("A playbook needs at least one stage; add another before removing this one.")
    rest = tuple(s for i, s in enumerate(stages) if i != index)
    return OutlineChange(rest, "stage remove", str(index + 1), stages[index].title, before=str(index + 1))


def move_stage(stages: Sequence[StageDraft], number: str, position: str) -> OutlineChange:
    index = _stage(stages, number)
    target = _stage(stages, position)
    changed = list(stages)
    changed.insert(target, changed.pop(index))
    return OutlineChange(tuple(changed), "stage move", str(target + 1), stages[index].title, before=str(index + 1))


# Steps --------------------------------------------------------------------------------------


def add_step(stages: Sequence[StageDraft], number: str, title: str) -> OutlineChange:
    """A new last step of a stage."""
    index = _stage(stages, number)
    if not title.strip():
        raise _error("Write: step add S <title>, for example step add 2 Check the logs.")
    _room_for_step(stages, index)
    clean = _step_field(validation.step_title, title)
    steps = (*stages[index].steps, StepDraft(title=clean))
    return OutlineChange(_with_steps(stages, index, steps), "step add", f"{index + 1}.{len(steps)}", clean)


def _replace_step(stages: Sequence[StageDraft], ref: StepRef, **update: object) -> Stages:
    steps = list(stages[ref.stage].steps)
    steps[ref.index] = steps[ref.index].model_copy(update=update)
    return _with_steps(stages, ref.stage, steps)


def remove_step(stages: Sequence[StageDraft], reference: str) -> OutlineChange:
    ref = _step(stages, reference)
    steps = list(stages[ref.stage].steps)
    step = steps.pop(ref.index)
    return OutlineChange(_with_steps(stages, ref.stage, steps), "step remove", ref.label, step.title,
                         before=ref.label)


def rename_step(stages: Sequence[StageDraft], reference: str, title: str) -> OutlineChange:
    ref = _step(stages, reference)
    clean = _step_field(validation.step_title, title)
    return OutlineChange(_replace_step(stages, ref, title=clean), "step rename", ref.label, clean)


def _cleared(text: str) -> str:
    return "" if text.strip().lower() in NONE_WORDS else text


def describe_step(stages: Sequence[StageDraft], reference: str, description: str) -> OutlineChange:
    """Set a step's description; one of :data:`NONE_WORDS` clears it."""
    ref = _step(stages, reference)
    value = _step_field(validation.step_description, _cleared(description))
    return OutlineChange(_replace_step(stages, ref, description=value), "step describe", ref.label,
                         stages[ref.stage].steps[ref.index].title, value)


def set_step_command(stages: Sequence[StageDraft], reference: str, command: str) -> OutlineChange:
    """Set a step's slash command; one of :data:`NONE_WORDS` clears it."""
    ref = _step(stages, reference)
    value = _step_field(validation.step_command, _cleared(command))
    return OutlineChange(_replace_step(stages, ref, command=value), "step command", ref.label,
                         stages[ref.stage].steps[ref.index].title, value)


def assign_step(stages: Sequence[StageDraft], reference: str, assignee_id: str | None) -> OutlineChange:
    """Set (or, with None, clear) a step's default assignee."""
    ref = _step(stages, reference)
    return OutlineChange(_replace_step(stages, ref, assignee_id=assignee_id), "step assign", ref.label,
                         stages[ref.stage].steps[ref.index].title, assignee_id or "")


def move_step(stages: Sequence[StageDraft], reference: str, where: str) -> OutlineChange:
    """Move a step to position ``N`` of its stage, or to ``S.N`` (position N of stage S)."""
    ref = _step(stages, reference)
    try:
        target = parse_step_ref(where, ref.stage)
    except ValidationError:
        raise _error("Write: step move S.N <position> (N, or S.N to move it to another stage).") from None
    if not 0 <= target.stage < len(stages):
        raise _error(f"Stage {target.stage + 1} does not exist: type a number from 1 to {len(stages)}.")
    steps = list(stages[ref.stage].steps)
    step = steps.pop(ref.index)
    changed = _with_steps(stages, ref.stage, steps)
    destination = list(changed[target.stage].steps)
    if not 0 <= target.index <= len(destination):
        raise _error(f"Position {target.index + 1} does not exist in stage {target.stage + 1}: "
                     f"choose 1 to {len(destination) + 1}.")
    if target.stage != ref.stage:
        _room_for_step(changed, target.stage)
    destination.insert(target.index, step)
    return OutlineChange(_with_steps(changed, target.stage, destination), "step move", target.label, step.title,
                         before=ref.label)


# Typed edits --------------------------------------------------------------------------------


def apply(stages: Sequence[StageDraft], edit: OutlineEdit) -> OutlineChange:
    """Run one typed edit (``stage add <title>``, ``step move 2.3 1``, ...) on ``stages``."""
    args = edit.args
    first = args[0] if args else ""
    second = args[1] if len(args) > 1 else ""
    rest = " ".join(args[1:])
    if edit.kind == "stage":
        if edit.verb == "add":
            return add_stage(stages, " ".join(args))
        if edit.verb == "rename":
            return rename_stage(stages, first, rest)
        if edit.verb == "remove":
            return remove_stage(stages, first)
        if edit.verb == "move":
            return move_stage(stages, first, second)
    elif edit.kind == "step":
        if edit.verb == "add":
            return add_step(stages, first, rest)
        if edit.verb == "remove":
            return remove_step(stages, first)
        if edit.verb == "rename":
            return rename_step(stages, first, rest)
        if edit.verb == "describe":
            return describe_step(stages, first, rest)
        if edit.verb == "command":
            return set_step_command(stages, first, rest)
        if edit.verb == "assign":
            return assign_step(stages, first, edit.assignee_id)
        if edit.verb == "move":
            return move_step(stages, first, second)
    raise _error(f"Unknown edit: {edit.kind} {edit.verb}. Type {COMMAND}playbook help.")


__all__ = [
    "NONE_WORDS",
    "SYNONYMS",
    "VERBS",
    "OutlineChange",
    "OutlineEdit",
    "add_stage",
    "add_step",
    "apply",
    "assign_step",
    "describe_step",
    "move_stage",
    "move_step",
    "remove_stage",
    "remove_step",
    "rename_stage",
    "rename_step",
    "set_step_command",
]

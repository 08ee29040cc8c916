"""Parsing the step and stage references people type (``2.3``, ``3``)."""

from __future__ import annotations

import re

from .errors import ValidationError
from .models import StepRef

_STEP_REF = re.compile(r"^(?:([0-9]{1,4})\.)?([0-9]{1,4})$")
_STAGE = re.compile(r"^[0-9]{1,4}$")

_STEP_HELP = (
    "Use S.N (stage and step, both from 1, e.g. 2.3) or N for step N of the active stage."
)

_FULL_STEP_HELP = "Write S.N (stage S, step N, both from 1), for example 2.3."


def parse_step_ref(text: str, active_stage: int | None) -> StepRef:
    """Parse ``"S.N"`` or ``"N"`` (1-based) into a 0-based :class:`StepRef`.

    ``N`` alone means a step of ``active_stage`` (0-based); with no active stage (a playbook's
    outline) only ``S.N`` is a step. Only the syntax is checked here; :meth:`Incident.locate`
    (or the outline edit) checks that the step exists.
    """
    help_text = _STEP_HELP if active_stage is not None else _FULL_STEP_HELP
    raw = text.strip() if isinstance(text, str) else ""
    match = _STEP_REF.match(raw)
    if not match or (active_stage is None and match.group(1) is None):
        shown = raw if raw else "(nothing)"
        raise ValidationError(f'"{shown}" is not a step reference. {help_text}')
    stage_text, step_text = match.groups()
    stage = int(stage_text) if stage_text is not None else (active_stage or 0) + 1
    step = int(step_text)
    if stage < 1 or step < 1:
        raise ValidationError(f'"{raw}" is not a step reference: stages and steps are numbered from 1. {help_text}')
    return StepRef(stage - 1, step - 1)


def parse_stage_number(text: str, stage_count: int) -> int:
    """Parse a 1-based stage number and return its 0-based index, checking it exists."""
    raw = text.strip() if isinstance(text, str) else ""
    if not _STAGE.match(raw):
        raise ValidationError(
            f'"{raw or "(nothing)"}" is not a stage number: type a number from 1 to {stage_count}.'
        )
    number = int(raw)
    if not 1 <= number <= stage_count:
        raise ValidationError(f"Stage {number} does not exist: type a number from 1 to {stage_count}.")
    return number - 1

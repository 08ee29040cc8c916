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


def parse_step_ref(text: str, active_stage: int) -> StepRef:
    """Parse ``"S.N"`` or ``"N"`` (1-based) into a 0-based :class:`StepRef`.

    ``N`` alone means a step of ``active_stage`` (0-based). Only the syntax is
    checked here; :meth:`Incident.locate` checks that the step exists.
    """
    raw = text.strip() if isinstance(text, str) else ""
    match = _STEP_REF.match(raw)
    if not match:
        shown = raw if raw else "(nothing)"
        raise ValidationError(f'"{shown}" is not a step reference. {_STEP_HELP}')
    stage_text, step_text = match.groups()
    stage = int(stage_text) if stage_text is not None else active_stage + 1
    step = int(step_text)
    if stage < 1 or step < 1:
        raise ValidationError(f'"{raw}" is not a step reference: stages and steps are numbered from 1. {_STEP_HELP}')
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

"""Command Center's domain: models, pure operations, permissions and errors.

Imports only the standard library and pydantic; no I/O happens here.
"""

from .errors import (
    Conflict,
    DomainError,
    InvalidState,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from .ids import new_id
from .models import (
    Actor,
    EventKind,
    Incident,
    IncidentStatus,
    Playbook,
    ReminderDelivery,
    Stage,
    Step,
    StepRef,
    StepState,
    StepTarget,
    TimelineEvent,
    UpdateSettings,
)
from .refs import parse_stage_number, parse_step_ref

__all__ = [
    "Actor",
    "Conflict",
    "DomainError",
    "EventKind",
    "Incident",
    "IncidentStatus",
    "InvalidState",
    "NotFound",
    "PermissionDenied",
    "Playbook",
    "ReminderDelivery",
    "Stage",
    "Step",
    "StepRef",
    "StepState",
    "StepTarget",
    "TimelineEvent",
    "UpdateSettings",
    "ValidationError",
    "new_id",
    "parse_stage_number",
    "parse_step_ref",
]

"""The retrospective of an ended incident (issue 18), as pure operations.

At the end an incident's retrospective becomes PENDING (:func:`domain.incidents.end_incident`);
the commander (or a system admin, ``domain.permissions.require_manage_retro``) then publishes one
(:func:`publish_retro`, again later to correct it) or records that there will be none
(:func:`skip_retro`). The dialog is prefilled by :func:`prefill`: the playbook's template and the
key figures, computed simply from the incident and its timeline (:func:`key_figures`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import limits
from ._ops import Result, event
from .durations import describe_duration
from .errors import COMMAND, InvalidState, ValidationError
from .models import EventKind, Incident, RetroSettings, RetroStatus, TimelineEvent

NOT_ENDED = f"A retrospective is written after the incident ends. End it first with {COMMAND}end."


@dataclass(frozen=True, slots=True)
class KeyFigures:
    """What the retrospective dialog starts with: how long it lasted, how much of the checklist was
    done, and how soon the first status update came (None: there was none)."""

    duration_ms: int
    steps_done: int
    steps_total: int
    first_update_after_ms: int | None


def key_figures(incident: Incident, events: Sequence[TimelineEvent], now: int) -> KeyFigures:
    """The key figures of ``incident`` from its timeline (the first STATUS_UPDATE event)."""
    first = next((e.at for e in events if e.kind is EventKind.STATUS_UPDATE), None)
    return KeyFigures(
        duration_ms=incident.duration_ms(now),
        steps_done=incident.steps_done,
        steps_total=incident.steps_total,
        first_update_after_ms=None if first is None else max(0, first - incident.created_at),
    )


def figures_text(figures: KeyFigures) -> str:
    """The key figures as a few Markdown lines."""
    first = "none" if figures.first_update_after_ms is None else describe_duration(figures.first_update_after_ms)
    return (f"**Duration:** {describe_duration(figures.duration_ms)}\n"
            f"**Steps done:** {figures.steps_done} of {figures.steps_total}\n"
            f"**Time to first update:** {first}")


def prefill(incident: Incident, figures: KeyFigures) -> str:
    """The dialog's text: the published retrospective if there is one, else the key figures and the
    playbook's template (cut to the text limit)."""
    if incident.retro_text:
        return incident.retro_text
    text = figures_text(figures)
    if incident.retro.template.strip():
        text = f"{text}\n\n{incident.retro.template.strip()}"
    return text[: limits.RETRO_TEXT_MAX]


def retro_text(text: str) -> str:
    """A checked retrospective text (not blank, within the limit)."""
    stripped = text.strip()
    if not stripped:
        raise ValidationError("Write the retrospective before publishing it, or choose \"No retrospective\".",
                              field="text")
    if len(stripped) > limits.RETRO_TEXT_MAX:
        raise ValidationError(f"A retrospective may be at most {limits.RETRO_TEXT_MAX} characters; this one has"
                              f" {len(stripped)}.", field="text")
    return stripped


def retro_settings(*, template: str = "", reminder_interval_ms: int | None = None) -> RetroSettings:
    """A playbook's checked retrospective settings."""
    if len(template) > limits.RETRO_TEMPLATE_MAX:
        raise ValidationError(f"The retrospective template may be at most {limits.RETRO_TEMPLATE_MAX} characters;"
                              f" this one has {len(template)}.", field="retro")
    if reminder_interval_ms is not None and not (
            limits.RETRO_REMINDER_MIN_MS <= reminder_interval_ms <= limits.RETRO_REMINDER_MAX_MS):
        raise ValidationError("The retrospective reminder comes 1 minute to 30 days after the end.", field="retro")
    return RetroSettings(template=template, reminder_interval_ms=reminder_interval_ms)


def require_ended(incident: Incident) -> None:
    """InvalidState unless the incident has ended."""
    if incident.is_ongoing:
        raise InvalidState(NOT_ENDED)


def publish_retro(incident: Incident, text: str, actor: str, now: int) -> Result:
    """Record the published retrospective (publishing again replaces the text: a correction)."""
    require_ended(incident)
    body = retro_text(text)
    updated = incident.model_copy(update={"retro_status": RetroStatus.PUBLISHED, "retro_text": body,
                                          "retro_published_at": now, "retro_by": actor})
    return updated, [event(incident, EventKind.RETRO_PUBLISHED, actor, now, length=len(body),
                           again=incident.retro_status is RetroStatus.PUBLISHED)]


def skip_retro(incident: Incident, actor: str, now: int) -> Result:
    """Record that this incident gets no retrospective (refused once one is published)."""
    require_ended(incident)
    if incident.retro_status is RetroStatus.PUBLISHED:
        raise InvalidState("The retrospective is already published; it stays on the record.")
    if incident.retro_status is RetroStatus.SKIPPED:
        return incident, []
    updated = incident.model_copy(update={"retro_status": RetroStatus.SKIPPED, "retro_by": actor})
    return updated, [event(incident, EventKind.RETRO_SKIPPED, actor, now)]


def status_label(incident: Incident) -> str | None:
    """How the card and info show where the retrospective stands (None while ongoing)."""
    if incident.retro_status is RetroStatus.PENDING:
        return "pending"
    if incident.retro_status is RetroStatus.PUBLISHED:
        return "published"
    if incident.retro_status is RetroStatus.SKIPPED:
        return "none (skipped)"
    return None

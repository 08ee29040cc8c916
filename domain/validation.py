"""Input cleaning and limit checks shared by every domain operation.

Models only describe structure; limits are enforced here, when user input enters
the domain (starting an incident, editing a checklist, saving a playbook). That
keeps data written under older limits loadable if a limit is ever tightened.
"""

from __future__ import annotations

import unicodedata

from . import limits
from .errors import ValidationError


def _preview(value: str, width: int = 24) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"


def _has_control(value: str, allowed: str = "") -> bool:
    return any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in value)


def clean_line(value: str, what: str, min_len: int, max_len: int, *, field: str | None = None) -> str:
    """Strip ``value`` and check it is one line of ``min_len``–``max_len`` characters.

    Errors carry ``field`` (see :class:`~domain.errors.DomainError`)."""
    try:
        return _clean_line(value, what, min_len, max_len)
    except ValidationError as error:
        raise ValidationError(error.message, field=field) from None


def _clean_line(value: str, what: str, min_len: int, max_len: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"The {what} must be text.")
    text = value.strip()
    if _has_control(text):
        raise ValidationError(f"The {what} must be a single line without control characters.")
    if len(text) < min_len:
        if min_len <= 1:
            raise ValidationError(f"The {what} must not be empty.")
        raise ValidationError(
            f'The {what} must be {min_len}–{max_len} characters long; "{text}" has {len(text)}.'
        )
    if len(text) > max_len:
        raise ValidationError(
            f'The {what} must be {min_len}–{max_len} characters long; "{_preview(text)}" has {len(text)}.'
            " Shorten it."
        )
    return text


def clean_text(value: str, what: str, max_len: int, *, field: str | None = None) -> str:
    """Normalise line endings, strip, and check a multi-line text against ``max_len``.

    Errors carry ``field`` (see :class:`~domain.errors.DomainError`)."""
    try:
        return _clean_text(value, what, max_len)
    except ValidationError as error:
        raise ValidationError(error.message, field=field) from None


def _clean_text(value: str, what: str, max_len: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"The {what} must be text.")
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if _has_control(text, allowed="\n\t"):
        raise ValidationError(f"The {what} contains control characters; remove them.")
    if len(text) > max_len:
        raise ValidationError(
            f"The {what} may be at most {max_len} characters long; it has {len(text)}. Shorten it."
        )
    return text


def incident_name(value: str) -> str:
    """Validate an incident name (2–64 characters, one line)."""
    return clean_line(value, "incident name", limits.INCIDENT_NAME_MIN, limits.INCIDENT_NAME_MAX, field="name")


def incident_description(value: str) -> str:
    """Validate an incident description."""
    return clean_text(value, "incident description", limits.INCIDENT_DESCRIPTION_MAX, field="description")


def playbook_title(value: str) -> str:
    """Validate a playbook title."""
    return clean_line(value, "playbook title", limits.PLAYBOOK_TITLE_MIN, limits.PLAYBOOK_TITLE_MAX, field="title")


def playbook_description(value: str) -> str:
    """Validate a playbook description."""
    return clean_text(value, "playbook description", limits.PLAYBOOK_DESCRIPTION_MAX, field="description")


def stage_title(value: str) -> str:
    """Validate a stage title."""
    return clean_line(value, "stage title", limits.STAGE_TITLE_MIN, limits.STAGE_TITLE_MAX, field="title")


def step_title(value: str) -> str:
    """Validate a step title (one line of markdown)."""
    return clean_line(value, "step title", limits.STEP_TITLE_MIN, limits.STEP_TITLE_MAX, field="title")


def step_description(value: str) -> str:
    """Validate a step description (markdown)."""
    return clean_text(value, "step description", limits.STEP_DESCRIPTION_MAX, field="description")


def step_command(value: str) -> str:
    """Validate a step's slash command: empty, or one line starting with ``/``."""
    text = clean_line(value, "step command", 0, limits.STEP_COMMAND_MAX, field="command")
    if text and (not text.startswith("/") or len(text) < 2 or text[1].isspace()):
        raise ValidationError(
            f'The step command must be a slash command such as "/echo hello"; got "{_preview(text)}".',
            field="command",
        )
    return text


def update_text(value: str) -> str:
    """Validate a status update's text (markdown, 1–``UPDATE_TEXT_MAX`` characters)."""
    text = clean_text(value, "status update", limits.UPDATE_TEXT_MAX, field="text")
    if not text:
        raise ValidationError("The status update must not be empty: say what changed and what happens next.",
                              field="text")
    return text


def update_template(value: str) -> str:
    """Validate a playbook's update template (markdown; may be empty)."""
    return clean_text(value, "update template", limits.UPDATE_TEMPLATE_MAX, field="template")


def update_interval(value: int | None) -> int | None:
    """Validate an update interval in ms: None (no reminder), or whole minutes from 1 min to 7 days."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("The update interval must be a number of minutes.", field="interval")
    if value % 60_000 or not limits.UPDATE_INTERVAL_MIN_MS <= value <= limits.UPDATE_INTERVAL_MAX_MS:
        raise ValidationError(
            "The update interval must be whole minutes, from 1 minute to 7 days (for example 15m, 1h, 4h).",
            field="interval")
    return value

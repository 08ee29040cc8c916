"""Status updates, reminders and followers of an incident, as pure operations (docs/status-updates.md).

Like the other incident operations, each takes the acting user's id and ``now`` (ms) and returns
``(new_incident, events)``; doing what is already done (following twice, unfollowing someone who
does not follow) changes nothing and records nothing. Who may do what is in
:mod:`domain.permissions`; the service checks it (Mattermost knows channel membership) before
calling these.

An incident's *due time* (``next_update_due_at``) is when its next status update is expected: an
update sets it ("next update in" 15 min, 1 h, … or none), a snooze moves it, ending clears it and
a restart sets it again from the incident's default interval. The reminder the scheduler sends is
due at the same moment; :func:`overdue` is the rule the card and the incident list use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from . import limits, validation
from ._ops import Result, event, require_ongoing
from .durations import HOUR_MS, MINUTE_MS, describe_duration, format_duration, parse_duration
from .errors import COMMAND, InvalidState, ValidationError
from .freshness import StaleCard
from .models import EventKind, Incident, TimelineEvent

__all__ = [
    "DEFAULT_CHOICE",
    "NEXT_UPDATE_OPTIONS",
    "NextUpdateChoice",
    "due_after",
    "follow",
    "next_update_choices",
    "next_update_in",
    "overdue",
    "post_update",
    "request_update",
    "set_update_post",
    "snooze_reminder",
    "unfollow",
]

#: The fixed "next update in" choices besides the incident's default and "none".
NEXT_UPDATE_OPTIONS = (15 * MINUTE_MS, 30 * MINUTE_MS, HOUR_MS, 4 * HOUR_MS)
#: The value of the "playbook's default" choice.
DEFAULT_CHOICE = "default"


class NextUpdateChoice(NamedTuple):
    """One "next update in" option: the value a form sends, its label, and the interval (None: none)."""

    value: str
    label: str
    interval_ms: int | None


def next_update_choices(incident: Incident) -> list[NextUpdateChoice]:
    """The options of the update dialog, default first: the incident's default (from its playbook)
    when it has one, the fixed options not equal to it, then none."""
    default = incident.updates.interval_ms
    choices = []
    if default is not None:
        choices.append(NextUpdateChoice(DEFAULT_CHOICE, f"Playbook default ({describe_duration(default)})", default))
    choices.extend(NextUpdateChoice(format_duration(ms), describe_duration(ms), ms)
                   for ms in NEXT_UPDATE_OPTIONS if ms != default)
    choices.append(NextUpdateChoice("none", "No next update", None))
    return choices


def next_update_in(incident: Incident, value: str | None) -> int | None:
    """The interval a "next update in" value asks for: ``default`` (or nothing) is the incident's
    default, otherwise any duration from 1 min to 7 days (``15m``, ``1h``), or ``none``."""
    raw = (value or "").strip().lower()
    if raw in ("", DEFAULT_CHOICE):
        return incident.updates.interval_ms
    return validation.update_interval(parse_duration(raw, field="next_in"))


def due_after(now: int, interval_ms: int | None) -> int | None:
    """When the next update is due, ``interval_ms`` after ``now`` (None: none is due)."""
    checked = validation.update_interval(interval_ms)
    return None if checked is None else now + checked


def overdue(incident: Incident, now: int) -> bool:
    """True when an ongoing incident's next update was due at or before ``now``."""
    due = incident.next_update_due_at
    return incident.is_ongoing and due is not None and now >= due


def post_update(incident: Incident, text: str, actor: str, now: int, *, next_in_ms: int | None) -> Result:
    """Record a status update by ``actor``: the next one is due ``next_in_ms`` from now (None: none).

    The event carries the text (the timeline is the record of what was said) and the due time;
    the service posts it, broadcasts it and sends it to the followers.
    """
    require_ongoing(incident)
    message = validation.update_text(text)
    due = due_after(now, next_in_ms)
    updated = incident.model_copy(update={
        "last_update_at": now, "last_update_by": actor, "last_update_post_id": None,
        "next_update_due_at": due, "update_requested_at": None})
    return updated, [event(incident, EventKind.STATUS_UPDATE, actor, now, message=message,
                           next_update_due_at=due, final=False)]


def final_update_event(incident: Incident, text: str, actor: str, now: int) -> tuple[dict, list[TimelineEvent]]:
    """The fields and event of a final update posted as the incident ends (see ``end_incident``)."""
    message = validation.update_text(text)
    fields = {"last_update_at": now, "last_update_by": actor, "last_update_post_id": None}
    return fields, [event(incident, EventKind.STATUS_UPDATE, actor, now, message=message,
                          next_update_due_at=None, final=True)]


def set_update_post(incident: Incident, post_id: str | None) -> Incident:
    """Remember the post of the last update, once it is posted (no timeline event; the card links it)."""
    return incident.model_copy(update={"last_update_post_id": post_id})


def snooze_reminder(incident: Incident, actor: str, now: int, *, drawn_for: int | None = None,
                    snooze_ms: int = limits.SNOOZE_MS) -> Result:
    """Move the due update ``snooze_ms`` (15 min) from now.

    ``drawn_for`` is the due time the reminder's button was drawn for: once an update has been
    posted (or another snooze has moved it), an old reminder's Snooze changes nothing.
    """
    require_ongoing(incident)
    due = incident.next_update_due_at
    if due is None:
        raise InvalidState("No status update is due for this incident, so there is nothing to snooze.")
    if drawn_for is not None and drawn_for != due:
        raise StaleCard("This reminder is out of date, so nothing changed: an update has been posted or the "
                        "reminder snoozed since.")
    new_due = now + snooze_ms
    updated = incident.model_copy(update={"next_update_due_at": new_due})
    return updated, [event(incident, EventKind.REMINDER_SNOOZED, actor, now, previous_due_at=due,
                           next_update_due_at=new_due)]


def request_update(incident: Incident, actor: str, now: int) -> Result:
    """Ask the commander for a status update (posted in the channel by the service).

    The commander does not ask themselves; a second request within
    ``REQUEST_UPDATE_COOLDOWN_MS`` of the last, with no update since, is refused.
    """
    require_ongoing(incident)
    if actor == incident.commander_id:
        raise ValidationError(f"You are the commander: post the update yourself with {COMMAND}update.")
    last = incident.update_requested_at
    if last is not None and now - last < limits.REQUEST_UPDATE_COOLDOWN_MS:
        minutes = max(1, (now - last) // MINUTE_MS)
        raise InvalidState(f"An update was already requested {minutes} min ago; the commander has been asked.")
    updated = incident.model_copy(update={"update_requested_at": now})
    return updated, [event(incident, EventKind.UPDATE_REQUESTED, actor, now, commander_id=incident.commander_id)]


def follow(incident: Incident, user_id: str, now: int) -> Result:
    """``user_id`` follows the incident (also once it has ended: followers hear of a restart)."""
    if user_id in incident.follower_ids:
        return incident, []
    if len(incident.follower_ids) >= limits.INCIDENT_FOLLOWERS_MAX:
        raise InvalidState(f"This incident already has {limits.INCIDENT_FOLLOWERS_MAX} followers, the most it "
                           "may have. Join its channel to see its updates.")
    updated = incident.model_copy(update={"follower_ids": (*incident.follower_ids, user_id)})
    return updated, [event(incident, EventKind.FOLLOWED, user_id, now)]


def unfollow(incident: Incident, user_id: str, now: int) -> Result:
    """``user_id`` stops following the incident."""
    if user_id not in incident.follower_ids:
        return incident, []
    updated = incident.model_copy(update={"follower_ids": tuple(f for f in incident.follower_ids if f != user_id)})
    return updated, [event(incident, EventKind.UNFOLLOWED, user_id, now)]


def initial_followers(auto_follower_ids: Sequence[str]) -> tuple[str, ...]:
    """The followers an incident starts with: its playbook's, within the limit, duplicates dropped."""
    return tuple(dict.fromkeys(f for f in auto_follower_ids if f))[: limits.INCIDENT_FOLLOWERS_MAX]

"""Timeline lines as people read them (issue 18): one pure function per event, shared by
the ``timeline`` command and the report.

:func:`render_event` gives one line: the event's time in UTC, how long after the incident's start
it happened (``+h:mm``; ``-h:mm`` for a post written before the start), who, and what. Every kind
has its own readable text; a kind this version does not know (written by a newer one) still
renders, generically, from its name. Everything that came from people (titles, status updates,
post excerpts, notes) is shown as limited one-line markdown: no mention fires and nothing breaks
out of the line.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any

from domain import limits
from domain.models import EventKind, Incident, TimelineEvent
from gateway.messages import format_duration, inline_code, limited_markdown, neutralize

Names = Mapping[str, str]
_USER_ID = re.compile(r"[a-z0-9]{26}")


def clock_time(ms: int) -> str:
    """``2026-12-01 14:05 UTC``."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def since_start(at: int, started_at: int) -> str:
    """``+h:mm`` from the incident's start to ``at`` (``-h:mm`` before it)."""
    delta = at - started_at
    sign = "-" if delta < 0 else "+"
    minutes = abs(delta) // 60_000
    return f"{sign}{minutes // 60}:{minutes % 60:02d}"


def _who(names: Names, user_id: object) -> str:
    if not isinstance(user_id, str) or not user_id:
        return "someone"
    name = names.get(user_id)
    return f"@{name}" if name else "a former user"


def _text(value: object, limit: int = limits.TIMELINE_EXCERPT_MAX) -> str:
    return limited_markdown(str(value or ""), one_line=True, limit=limit)


def _step(details: Mapping[str, Any]) -> str:
    stage, index = details.get("stage"), details.get("index")
    label = f"{stage + 1}.{index + 1} " if isinstance(stage, int) and isinstance(index, int) else ""
    return f"step {label}“{_text(details.get('title'), 120)}”"


def _created(e: TimelineEvent, i: Incident, names: Names) -> str:
    text = "started the incident"
    if i.playbook_title:
        text += f" from the playbook “{neutralize(i.playbook_title)}”"
    if e.details.get("commander_id"):
        text += f", commander {_who(names, e.details['commander_id'])}"
    return text


def _stage(e: TimelineEvent, i: Incident, names: Names) -> str:
    stage = e.details.get("stage")
    number = f"{stage + 1} " if isinstance(stage, int) else ""
    return f"moved to stage {number}“{_text(e.details.get('title'), 120)}”"


def _assigned(e: TimelineEvent, i: Incident, names: Names) -> str:
    assignee = e.details.get("assignee_id")
    if not assignee:
        return f"cleared the assignee of {_step(e.details)}"
    return f"assigned {_step(e.details)} to {_who(names, assignee)}"


def _run(e: TimelineEvent, i: Incident, names: Names) -> str:
    command = e.details.get("command")
    return f"ran {_step(e.details)}" + (f" ({inline_code(str(command), limit=120)})" if command else "")


def _renamed(e: TimelineEvent, i: Incident, names: Names) -> str:
    return f"renamed step “{_text(e.details.get('previous_title'), 120)}” to {_step(e.details)}"


def _ended(e: TimelineEvent, i: Incident, names: Names) -> str:
    text = "ended the incident"
    duration = e.details.get("duration_ms")
    if isinstance(duration, int):
        text += f" after {format_duration(duration)}"
    done, total = e.details.get("steps_done"), e.details.get("steps_total")
    if isinstance(done, int) and isinstance(total, int):
        text += f" ({done}/{total} steps done)"
    return text


def _update(e: TimelineEvent, i: Incident, names: Names) -> str:
    what = "posted the final status update" if e.details.get("final") else "posted a status update"
    message = e.details.get("message")
    return f"{what}: “{_text(message)}”" if message else what


def _member(joined: bool) -> Callable[[TimelineEvent, Incident, Names], str]:
    def line(e: TimelineEvent, i: Incident, names: Names) -> str:
        user = e.details.get("user_id")
        if not user or user == e.actor_id:
            return "joined the channel" if joined else "left the channel"
        return (f"added {_who(names, user)} to the channel" if joined
                else f"removed {_who(names, user)} from the channel")
    return line


def _field(e: TimelineEvent, i: Incident, names: Names) -> str:
    d = e.details
    field_id = d.get("field_id") or d.get("field") or ""
    name = d.get("name") or next((f.name for f in i.fields if f.id == field_id), field_id) or "a field"
    kind = next((f.kind.value for f in i.fields if f.id == field_id), "")

    def shown(value: object) -> str:
        return _who(names, value) if kind == "user" and isinstance(value, str) else f"“{_text(str(value), 120)}”"

    # domain/fields.py set_field: ``old`` and ``new`` (None when unset)
    new, old = d.get("new"), d.get("old")
    was = "" if old in (None, "") else f" (was {shown(old)})"
    if new in (None, ""):
        return f"cleared {neutralize(str(name))}{was}"
    return f"set {neutralize(str(name))} to {shown(new)}{was}"


def _post(e: TimelineEvent, i: Incident, names: Names) -> str:
    d = e.details
    link = d.get("permalink")
    post = f"[a post]({link})" if isinstance(link, str) and link.startswith(("http://", "https://")) else "a post"
    text = f"added {post} by {_who(names, d.get('author_id'))}"
    if d.get("deleted"):
        text += " (since deleted)"
    elif d.get("excerpt"):
        text += f": “{_text(d.get('excerpt'))}”"
    if d.get("note"):
        text += f" — {_text(d.get('note'), limits.TIMELINE_NOTE_MAX)}"
    return text


def _alert(received: bool) -> Callable[[TimelineEvent, Incident, Names], str]:
    def line(e: TimelineEvent, i: Incident, names: Names) -> str:
        title = e.details.get("title") or e.details.get("summary") or e.details.get("name")
        what = "alert received" if received else "alert resolved"
        return f"{what}: “{_text(title, 120)}”" if title else what
    return line


def _fixed(text: str) -> Callable[[TimelineEvent, Incident, Names], str]:
    return lambda e, i, names: text


_LINES: dict[EventKind, Callable[[TimelineEvent, Incident, Names], str]] = {
    EventKind.CREATED: _created,
    EventKind.COMMANDER_CHANGED: lambda e, i, names: (
        f"made {_who(names, e.details.get('commander_id'))} the commander"
        + (f" (was {_who(names, e.details['previous_commander_id'])})" if e.details.get("previous_commander_id") else "")),
    EventKind.STAGE_CHANGED: _stage,
    EventKind.STEP_CHECKED: lambda e, i, names: f"checked {_step(e.details)}",
    EventKind.STEP_UNCHECKED: lambda e, i, names: f"unchecked {_step(e.details)}",
    EventKind.STEP_ASSIGNED: _assigned,
    EventKind.STEP_RUN: _run,
    EventKind.STEP_ADDED: lambda e, i, names: f"added {_step(e.details)}",
    EventKind.STEP_REMOVED: lambda e, i, names: f"removed {_step(e.details)}",
    EventKind.STEP_RENAMED: _renamed,
    EventKind.STEP_MOVED: lambda e, i, names: f"moved {_step(e.details)}",
    EventKind.ENDED: _ended,
    EventKind.RESTARTED: _fixed("restarted the incident"),
    EventKind.STATUS_UPDATE: _update,
    EventKind.POST_PINNED: _fixed("pinned a post"),
    EventKind.UPDATE_REQUESTED: _fixed("asked the commander for a status update"),
    EventKind.REMINDER_SNOOZED: _fixed("snoozed the status update reminder"),
    EventKind.FOLLOWED: _fixed("followed the incident"),
    EventKind.UNFOLLOWED: _fixed("stopped following the incident"),
    EventKind.MEMBER_JOINED: _member(True),
    EventKind.MEMBER_LEFT: _member(False),
    EventKind.FIELD_CHANGED: _field,
    EventKind.POST_ADDED: _post,
    EventKind.RETRO_PUBLISHED: _fixed("published the retrospective"),
    EventKind.RETRO_SKIPPED: _fixed("chose to write no retrospective"),
    EventKind.ALERT_RECEIVED: _alert(True),
    EventKind.ALERT_RESOLVED: _alert(False),
}


def event_text(event: TimelineEvent, incident: Incident, names: Names | None = None) -> str:
    """What happened, without time or actor (``checked step 1.2 “Page the DBA”``)."""
    line = _LINES.get(event.kind)
    if line is None:  # a kind of a newer version, or one with no text of its own
        return neutralize(str(event.kind.value if isinstance(event.kind, EventKind) else event.kind).replace("_", " "))
    return line(event, incident, names or {})


def render_event(event: TimelineEvent, incident: Incident, now: int, names: Names | None = None,
                 *, number: int | None = None) -> str:
    """One timeline line: ``#n`` (when given), UTC time, ``+h:mm`` since the start, actor, text.

    ``now`` is when the line is drawn: an event stamped later than it (clocks that disagree) is
    shown at ``now``, never in the future.
    """
    names = names or {}
    at = min(event.at, max(now, incident.created_at))
    head = f"`#{number}` " if number is not None else ""
    return (f"{head}{clock_time(at)} · {since_start(at, incident.created_at)} · "
            f"{_who(names, event.actor_id)} {event_text(event, incident, names)}")


def user_ids_of(event: TimelineEvent) -> set[str]:
    """Every user id the line of ``event`` names (to look their names up at once)."""
    ids = {event.actor_id}
    for key in ("commander_id", "previous_commander_id", "assignee_id", "user_id", "author_id"):
        value = event.details.get(key)
        if isinstance(value, str) and value:
            ids.add(value)
    if event.kind is EventKind.FIELD_CHANGED:
        for key in ("new", "old"):
            value = event.details.get(key)
            if isinstance(value, str) and _USER_ID.fullmatch(value):
                ids.add(value)  # a user field's value (a text that merely looks like an id finds nobody)
    return {user_id for user_id in ids if user_id}


__all__ = ["clock_time", "event_text", "render_event", "since_start", "user_ids_of"]

"""The incident report as a Markdown document (issue 18, the ``report`` command): pure and
deterministic — the same incident, events, names and moment always give the same bytes
(tests/golden/report.md is the proof).

Sections: summary, fields, commander history, participants, metrics (domain/metrics.py), the
checklist with who did what when, status updates, the retrospective, and the timeline (each line
by the timeline's own renderer, gateway/timeline.py). Everything people wrote is shown as limited
markdown or a quote with no live mention, as in posts (a file may be pasted into one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from domain import timeline
from domain.metrics import IncidentMetrics, incident_metrics
from domain.models import EventKind, FieldKind, Incident, RetroStatus, TimelineEvent
from gateway.messages import format_duration, limited_markdown, neutralize, quote
from gateway.timeline import clock_time, render_event, since_start, user_ids_of

#: Kinds that are a step's own history in the checklist section.
_STEP_KINDS = (EventKind.STEP_ADDED, EventKind.STEP_CHECKED, EventKind.STEP_UNCHECKED, EventKind.STEP_ASSIGNED,
               EventKind.STEP_RUN, EventKind.STEP_RENAMED, EventKind.STEP_MOVED)
_STEP_VERBS = {EventKind.STEP_ADDED: "added", EventKind.STEP_CHECKED: "checked", EventKind.STEP_UNCHECKED: "unchecked",
               EventKind.STEP_RUN: "ran", EventKind.STEP_RENAMED: "renamed", EventKind.STEP_MOVED: "moved"}


@dataclass(frozen=True)
class ReportInput:
    """Everything the report shows, fetched by services/report.py."""

    incident: Incident
    #: The incident's events in the order they were recorded.
    events: Sequence[TimelineEvent]
    channel_name: str
    #: People who took part (the details view's "members involved"); None when the channel is unreadable.
    participants: Sequence[str] | None
    #: User id → username, for every id the report names.
    names: Mapping[str, str] = field(default_factory=dict)


def user_ids(incident: Incident, events: Sequence[TimelineEvent], participants: Sequence[str] = ()) -> set[str]:
    """Every user id the report may name (to look their names up at once)."""
    ids = {incident.commander_id, incident.creator_id, *participants}
    if incident.retro_by:
        ids.add(incident.retro_by)
    for stage in incident.stages:
        for step in stage.steps:
            ids.update(user for user in (step.assignee_id, step.state_changed_by) if user)
    for event in events:
        ids |= user_ids_of(event)
    for definition in incident.fields:
        value = incident.field_values.get(definition.id)
        if definition.kind is FieldKind.USER and value:
            ids.add(value)
    return {user_id for user_id in ids if user_id}


def _who(names: Mapping[str, str], user_id: str | None) -> str:
    if not user_id:
        return "nobody"
    name = names.get(user_id)
    return f"@{name}" if name else "a former user"


def _duration(ms: int | None, missing: str) -> str:
    return missing if ms is None else format_duration(ms)


def _when(at: int, incident: Incident) -> str:
    return f"{clock_time(at)} ({since_start(at, incident.created_at)})"


def _summary(data: ReportInput, now: int) -> list[str]:
    incident, names = data.incident, data.names
    lines = ["## Summary", "",
             f"- **Status:** {'ongoing' if incident.is_ongoing else 'ended'}",
             f"- **Channel:** {'~' + data.channel_name if data.channel_name else 'no longer readable'}"
             f" ({'public' if incident.public else 'private'})",
             f"- **Commander:** {_who(names, incident.commander_id)}",
             f"- **Playbook:** {neutralize(incident.playbook_title) if incident.playbook_title else '(none)'}",
             f"- **Started:** {clock_time(incident.created_at)} by {_who(names, incident.creator_id)}"]
    if incident.ended_at is not None:
        lines.append(f"- **Ended:** {clock_time(incident.ended_at)}")
    lines.append(f"- **Duration:** {format_duration(incident.duration_ms(now))}")
    lines.append(f"- **Steps done:** {incident.steps_done}/{incident.steps_total}")
    if incident.description:
        lines += ["", limited_markdown(incident.description)]
    return lines


def _fields(data: ReportInput) -> list[str]:
    incident = data.incident
    lines = ["## Fields", ""]
    if not incident.fields:
        return [*lines, "This incident has no fields."]
    lines += ["| Field | Value |", "|:--|:--|"]
    for definition in incident.fields:
        value = incident.field_values.get(definition.id)
        if not value:
            shown = "not set"
        elif definition.kind is FieldKind.USER:
            shown = _who(data.names, value)
        else:
            shown = limited_markdown(value, one_line=True, limit=200).replace("|", "\\|")
        lines.append(f"| {neutralize(definition.name)} | {shown} |")
    return lines


def _commanders(data: ReportInput) -> list[str]:
    incident, names = data.incident, data.names
    lines = ["## Commander history", ""]
    first = incident.commander_id
    changes = [e for e in data.events if e.kind is EventKind.COMMANDER_CHANGED]
    created = next((e for e in data.events if e.kind is EventKind.CREATED), None)
    if changes:
        first = str(changes[0].details.get("previous_commander_id") or first)
    elif created is not None and isinstance(created.details.get("commander_id"), str):
        first = created.details["commander_id"]
    lines.append(f"- {_when(incident.created_at, incident)} — {_who(names, first)}, from the start")
    for change in changes:
        lines.append(f"- {_when(change.at, incident)} — {_who(names, str(change.details.get('commander_id', '')))},"
                     f" made commander by {_who(names, change.actor_id)}")
    return lines


def _participants(data: ReportInput) -> list[str]:
    lines = ["## Participants", ""]
    if data.participants is None:
        return [*lines, "Unknown: Command Center can no longer read the channel."]
    people = sorted((_who(data.names, user_id) for user_id in data.participants), key=str.lower)
    if not people:
        return [*lines, "Nobody yet."]
    return [*lines, f"{len(people)} {'person' if len(people) == 1 else 'people'}: {', '.join(people)}"]


def _metrics(data: ReportInput, figures: IncidentMetrics) -> list[str]:
    incident, names = data.incident, data.names
    lines = ["## Metrics", "",
             "Computed from the timeline (definitions: docs/metrics.md).", "",
             f"- **Time to first status update:** {_duration(figures.time_to_first_update_ms, 'no status update yet')}",
             f"- **Time to resolve** (start to last end): "
             f"{_duration(figures.time_to_resolve_ms, 'not resolved (ongoing)')}",
             f"- **Time ongoing:** {format_duration(figures.ongoing_ms)}"
             + (f" ({figures.restarts} restart{'s' if figures.restarts != 1 else ''})" if figures.restarts else ""),
             f"- **Steps done:** {figures.steps_done}"]
    if figures.done_by:
        credited = sorted(figures.done_by.items(), key=lambda item: (-item[1], _who(names, item[0]).lower()))
        lines[-1] += " — " + ", ".join(f"{_who(names, user)} {count}" for user, count in credited)
    lines += ["", "| Stage | Time in stage |", "|:--|--:|"]
    for index, stage in enumerate(incident.stages):
        ms = figures.stage_ms[index] if index < len(figures.stage_ms) else 0
        lines.append(f"| {index + 1}. {neutralize(stage.title)} | {format_duration(ms)} |")
    return lines


def _checklist(data: ReportInput) -> list[str]:
    incident, names = data.incident, data.names
    history: dict[str, list[TimelineEvent]] = {}
    for event in data.events:
        step_id = event.details.get("step_id")
        if event.kind in _STEP_KINDS and isinstance(step_id, str):
            history.setdefault(step_id, []).append(event)
    lines = ["## Checklist"]
    for s, stage in enumerate(incident.stages):
        active = " (active)" if s == incident.active_stage and incident.is_ongoing else ""
        lines += ["", f"### {s + 1}. {neutralize(stage.title)}{active} — {stage.done_count}/{len(stage.steps)} done", ""]
        if not stage.steps:
            lines.append("No steps.")
        for n, step in enumerate(stage.steps):
            line = f"- [{'x' if step.done else ' '}] {s + 1}.{n + 1} {limited_markdown(step.title, one_line=True)}"
            if step.assignee_id:
                line += f" — assigned to {_who(names, step.assignee_id)}"
            if step.done and step.state_changed_at is not None:
                line += f" — done by {_who(names, step.state_changed_by)}, {clock_time(step.state_changed_at)}"
            lines.append(line)
            for event in history.get(step.id, ()):
                if event.kind is EventKind.STEP_ASSIGNED:
                    assignee = event.details.get("assignee_id")
                    what = f"assigned it to {_who(names, str(assignee))}" if assignee else "cleared its assignee"
                else:
                    what = f"{_STEP_VERBS[event.kind]} it"
                lines.append(f"  - {_when(event.at, incident)} {_who(names, event.actor_id)} {what}")
    return lines


def _updates(data: ReportInput) -> list[str]:
    incident, names = data.incident, data.names
    updates = [e for e in data.events if e.kind is EventKind.STATUS_UPDATE]
    lines = ["## Status updates", ""]
    if not updates:
        return [*lines, "No status update was posted."]
    for number, update in enumerate(updates, start=1):
        final = " (final)" if update.details.get("final") else ""
        lines += [f"**{number}. {_when(update.at, incident)} — {_who(names, update.actor_id)}{final}**", "",
                  quote(str(update.details.get("message", ""))), ""]
    return lines[:-1]


def _retro(data: ReportInput) -> list[str]:
    incident, names = data.incident, data.names
    lines = ["## Retrospective", ""]
    status = incident.retro_status
    if status is RetroStatus.PUBLISHED:
        when = f" {clock_time(incident.retro_published_at)}" if incident.retro_published_at is not None else ""
        lines += [f"Published{when} by {_who(names, incident.retro_by)}.", "", limited_markdown(incident.retro_text)]
    elif status is RetroStatus.SKIPPED:
        lines.append(f"No retrospective: {_who(names, incident.retro_by)} chose to write none.")
    elif status is RetroStatus.PENDING:
        lines.append("Not written yet.")
    else:
        lines.append("None yet" + (" (the incident is ongoing)." if incident.is_ongoing else "."))
    return lines


def _timeline(data: ReportInput, now: int) -> list[str]:
    shown = timeline.entries(data.events)
    lines = ["## Timeline", ""]
    if not shown:
        return [*lines, "Nothing recorded."]
    return [*lines, *(f"- {render_event(entry.event, data.incident, now, data.names, number=entry.number)}"
                      for entry in shown)]


def render_report(data: ReportInput, now: int) -> str:
    """The report of ``data.incident`` as it stands at ``now`` (ms), as Markdown."""
    incident = data.incident
    figures = incident_metrics(incident, data.events, now)
    # What the commander hid is left out of every section but the figures (exact from all events)
    # and the timeline (which leaves hidden events out itself): the report is for anyone who may see it.
    hidden = timeline.hidden_ids(data.events)
    shown = replace(data, events=[e for e in data.events if e.id not in hidden]) if hidden else data
    sections = [
        [f"# Incident report: {neutralize(incident.name)}", "",
         f"Generated {clock_time(now)} by Command Center. Times are UTC; (+h:mm) is the time since the start."],
        _summary(shown, now), _fields(shown), _commanders(shown), _participants(shown), _metrics(shown, figures),
        _checklist(shown), _updates(shown), _retro(shown), _timeline(data, now),
    ]
    return "\n\n".join("\n".join(section) for section in sections) + "\n"


def report_filename(incident: Incident, channel_name: str, now: int) -> str:
    """``<channel>-report-YYYYMMDD-HHMM.md``."""
    stamp = clock_time(now).replace("-", "").replace(" UTC", "").replace(" ", "-").replace(":", "")
    return f"{channel_name or 'incident'}-report-{stamp}.md"


__all__ = ["ReportInput", "render_report", "report_filename", "user_ids"]

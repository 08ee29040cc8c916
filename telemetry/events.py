"""What is tracked: pure functions from domain changes to ``(event name, properties)`` pairs.

Properties are built field by field from identifiers, flags, timestamps and counts; nothing here
reads a title, a name, a description, a command or a timeline event's ``details`` (which hold
step titles), so the content of incidents and playbooks cannot reach telemetry by accident.
:data:`ALLOWED_PROPERTIES` is the complete list of what each event may carry; the README's
"Telemetry" section documents the same table.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from domain.models import EventKind, Incident, Playbook, TimelineEvent

Properties = dict[str, Any]


class TelemetryEvent(StrEnum):
    """The name of every event Command Center may send."""

    INCIDENT_CREATED = "incident_created"
    INCIDENT_ENDED = "incident_ended"
    INCIDENT_RESTARTED = "incident_restarted"
    CHECKLIST_ITEM_CREATED = "checklist_item_created"
    CHECKLIST_ITEM_REMOVED = "checklist_item_removed"
    CHECKLIST_ITEM_RENAMED = "checklist_item_renamed"
    CHECKLIST_ITEM_MOVED = "checklist_item_moved"
    CHECKLIST_ITEM_CHECKED = "checklist_item_checked"
    CHECKLIST_ITEM_UNCHECKED = "checklist_item_unchecked"
    CHECKLIST_ITEM_ASSIGNED = "checklist_item_assigned"
    CHECKLIST_ITEM_COMMAND_RUN = "checklist_item_command_run"
    STAGE_CHANGED = "stage_changed"
    COMMANDER_CHANGED = "commander_changed"
    PLAYBOOK_CREATED = "playbook_created"
    PLAYBOOK_UPDATED = "playbook_updated"
    PLAYBOOK_DELETED = "playbook_deleted"
    UPDATE_POSTED = "update_posted"
    REMINDER_SENT = "reminder_sent"
    REMINDER_SNOOZED = "reminder_snoozed"
    UPDATE_REQUESTED = "update_requested"
    INCIDENT_FOLLOWED = "incident_followed"
    INCIDENT_UNFOLLOWED = "incident_unfollowed"


class PlaybookChange(StrEnum):
    """What happened to a playbook."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


#: Added to every event by the sender (see telemetry.client), never by the mapping below.
METADATA_PROPERTIES = ("diagnosticID", "serverVersion", "pluginVersion")

_INCIDENT = ("ID", "IsActive", "CommanderUserID", "TeamID", "CreatedAt", "ChannelIDs", "PostID",
             "NumChecklists", "TotalChecklistItems")
_ITEM = ("IncidentID", "UserID")
_PLAYBOOK = ("PlaybookID", "TeamID", "NumChecklists", "TotalChecklistItems")

#: Every event's complete set of properties (besides :data:`METADATA_PROPERTIES`).
ALLOWED_PROPERTIES: dict[TelemetryEvent, frozenset[str]] = {
    TelemetryEvent.INCIDENT_CREATED: frozenset(_INCIDENT),
    TelemetryEvent.INCIDENT_ENDED: frozenset(_INCIDENT + ("UserID",)),
    TelemetryEvent.INCIDENT_RESTARTED: frozenset(_INCIDENT + ("UserID",)),
    TelemetryEvent.CHECKLIST_ITEM_CREATED: frozenset(_ITEM),
    TelemetryEvent.CHECKLIST_ITEM_REMOVED: frozenset(_ITEM),
    TelemetryEvent.CHECKLIST_ITEM_RENAMED: frozenset(_ITEM),
    TelemetryEvent.CHECKLIST_ITEM_MOVED: frozenset(_ITEM),
    TelemetryEvent.CHECKLIST_ITEM_CHECKED: frozenset(_ITEM),
    TelemetryEvent.CHECKLIST_ITEM_UNCHECKED: frozenset(_ITEM),
    TelemetryEvent.CHECKLIST_ITEM_ASSIGNED: frozenset(_ITEM),
    TelemetryEvent.CHECKLIST_ITEM_COMMAND_RUN: frozenset(_ITEM),
    TelemetryEvent.STAGE_CHANGED: frozenset(_ITEM),
    TelemetryEvent.COMMANDER_CHANGED: frozenset(_ITEM + ("CommanderUserID",)),
    TelemetryEvent.PLAYBOOK_CREATED: frozenset(_PLAYBOOK),
    TelemetryEvent.PLAYBOOK_UPDATED: frozenset(_PLAYBOOK),
    TelemetryEvent.PLAYBOOK_DELETED: frozenset(_PLAYBOOK),
    TelemetryEvent.UPDATE_POSTED: frozenset(_ITEM + ("IsFinal", "HasNextUpdate")),
    TelemetryEvent.REMINDER_SENT: frozenset(("IncidentID", "CommanderUserID", "IsLate", "NumPosts")),
    TelemetryEvent.REMINDER_SNOOZED: frozenset(_ITEM),
    TelemetryEvent.UPDATE_REQUESTED: frozenset(_ITEM + ("CommanderUserID",)),
    TelemetryEvent.INCIDENT_FOLLOWED: frozenset(_ITEM),
    TelemetryEvent.INCIDENT_UNFOLLOWED: frozenset(_ITEM),
}

_ITEM_EVENTS = {
    EventKind.STEP_ADDED: TelemetryEvent.CHECKLIST_ITEM_CREATED,
    EventKind.STEP_REMOVED: TelemetryEvent.CHECKLIST_ITEM_REMOVED,
    EventKind.STEP_RENAMED: TelemetryEvent.CHECKLIST_ITEM_RENAMED,
    EventKind.STEP_MOVED: TelemetryEvent.CHECKLIST_ITEM_MOVED,
    EventKind.STEP_CHECKED: TelemetryEvent.CHECKLIST_ITEM_CHECKED,
    EventKind.STEP_UNCHECKED: TelemetryEvent.CHECKLIST_ITEM_UNCHECKED,
    EventKind.STEP_ASSIGNED: TelemetryEvent.CHECKLIST_ITEM_ASSIGNED,
    EventKind.STEP_RUN: TelemetryEvent.CHECKLIST_ITEM_COMMAND_RUN,
    EventKind.STAGE_CHANGED: TelemetryEvent.STAGE_CHANGED,
    EventKind.REMINDER_SNOOZED: TelemetryEvent.REMINDER_SNOOZED,
    EventKind.FOLLOWED: TelemetryEvent.INCIDENT_FOLLOWED,
    EventKind.UNFOLLOWED: TelemetryEvent.INCIDENT_UNFOLLOWED,
}

_LIFECYCLE_EVENTS = {
    EventKind.CREATED: (TelemetryEvent.INCIDENT_CREATED, True),
    EventKind.ENDED: (TelemetryEvent.INCIDENT_ENDED, False),
    EventKind.RESTARTED: (TelemetryEvent.INCIDENT_RESTARTED, True),
}

_PLAYBOOK_EVENTS = {
    PlaybookChange.CREATED: TelemetryEvent.PLAYBOOK_CREATED,
    PlaybookChange.UPDATED: TelemetryEvent.PLAYBOOK_UPDATED,
    PlaybookChange.DELETED: TelemetryEvent.PLAYBOOK_DELETED,
}


def _incident_properties(incident: Incident, *, is_active: bool) -> Properties:
    return {
        "ID": incident.id,
        "IsActive": is_active,
        "CommanderUserID": incident.commander_id,
        "TeamID": incident.team_id,
        "CreatedAt": int(incident.created_at),
        "ChannelIDs": [incident.channel_id],
        "PostID": incident.source_post_id or "",
        "NumChecklists": len(incident.stages),
        "TotalChecklistItems": incident.steps_total,
    }


def event_for_timeline_event(incident: Incident, event: TimelineEvent) -> tuple[TelemetryEvent, Properties] | None:
    """The telemetry event for one timeline event of ``incident`` (its state after the change), or
    None for kinds that are not tracked (pinned messages). A status update's text is never read:
    only whether it was final and whether a next one is due (flags)."""
    if event.kind in _LIFECYCLE_EVENTS:
        name, is_active = _LIFECYCLE_EVENTS[event.kind]
        properties = _incident_properties(incident, is_active=is_active)
        if event.kind is not EventKind.CREATED:
            properties["UserID"] = event.actor_id
        return name, properties
    if event.kind is EventKind.COMMANDER_CHANGED:
        return TelemetryEvent.COMMANDER_CHANGED, {"IncidentID": incident.id, "UserID": event.actor_id,
                                                  "CommanderUserID": incident.commander_id}
    if event.kind is EventKind.STATUS_UPDATE:
        return TelemetryEvent.UPDATE_POSTED, {"IncidentID": incident.id, "UserID": event.actor_id,
                                              "IsFinal": event.details.get("final") is True,
                                              "HasNextUpdate": event.details.get("next_update_due_at") is not None}
    if event.kind is EventKind.UPDATE_REQUESTED:
        return TelemetryEvent.UPDATE_REQUESTED, {"IncidentID": incident.id, "UserID": event.actor_id,
                                                 "CommanderUserID": incident.commander_id}
    if event.kind in _ITEM_EVENTS:
        return _ITEM_EVENTS[event.kind], {"IncidentID": incident.id, "UserID": event.actor_id}
    return None


def events_for_incident_change(incident: Incident,
                               timeline_events: Iterable[TimelineEvent]) -> list[tuple[TelemetryEvent, Properties]]:
    """The telemetry events for one change: ``incident`` as saved, and the timeline events it recorded."""
    tracked = []
    for event in timeline_events:
        mapped = event_for_timeline_event(incident, event)
        if mapped is not None:
            tracked.append(mapped)
    return tracked


def event_for_reminder_sent(incident: Incident, *, late: bool, posts: int) -> tuple[TelemetryEvent, Properties]:
    """A reminder was sent to the commander (``posts``: channel and/or DM; ``late``: after downtime)."""
    return TelemetryEvent.REMINDER_SENT, {"IncidentID": incident.id, "CommanderUserID": incident.commander_id,
                                          "IsLate": bool(late), "NumPosts": int(posts)}


def event_for_playbook_change(change: PlaybookChange | str, playbook: Playbook) -> tuple[TelemetryEvent, Properties]:
    """The telemetry event for a playbook that was created, updated (its state after the update)
    or deleted (its state just before deletion)."""
    return _PLAYBOOK_EVENTS[PlaybookChange(change)], {
        "PlaybookID": playbook.id,
        "TeamID": playbook.team_id,
        "NumChecklists": len(playbook.stages),
        "TotalChecklistItems": playbook.step_count,
    }


__all__ = [
    "ALLOWED_PROPERTIES",
    "METADATA_PROPERTIES",
    "PlaybookChange",
    "Properties",
    "TelemetryEvent",
    "event_for_playbook_change",
    "event_for_reminder_sent",
    "event_for_timeline_event",
    "events_for_incident_change",
]

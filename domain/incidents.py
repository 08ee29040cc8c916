"""Pure operations on an incident's lifecycle: start, commander, stage, end, restart.

Like the checklist operations, each takes ``actor`` (user id) and ``now`` (ms)
and returns ``(new_incident, events)``; setting something to the value it
already has changes nothing and records nothing.

Ended incidents are read-only except for :func:`restart_incident`; everything
else raises InvalidState ("This incident has ended. Type <the command> restart to
reopen it.").
"""

from __future__ import annotations

from . import validation
from ._ops import ENDED_MESSAGE, Result, event, moment_after, require_ongoing
from .errors import COMMAND, InvalidState, ValidationError
from .ids import new_id
from .models import EventKind, Incident, IncidentStatus, Playbook, RetroStatus, Stage, Step, TimelineEvent
from .updates import final_update_event, initial_followers

__all__ = [
    "ENDED_MESSAGE",
    "change_commander",
    "copy_stages",
    "end_incident",
    "next_stage",
    "previous_stage",
    "restart_incident",
    "set_card_post",
    "set_stage",
    "start_incident",
]


def copy_stages(stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
    """An independent copy of ``stages``: new ids, every step open, default assignees kept."""
    copied = tuple(
        Stage(
            id=new_id(),
            title=stage.title,
            steps=tuple(
                Step(
                    id=new_id(),
                    title=step.title,
                    description=step.description,
                    command=step.command,
                    assignee_id=step.assignee_id,
                )
                for step in stage.steps
            ),
        )
        for stage in stages
    )
    return copied or (Stage(id=new_id(), title="Checklist"),)


def start_incident(
    playbook: Playbook,
    *,
    name: str,
    channel_id: str,
    creator_id: str,
    now: int,
    description: str = "",
    public: bool | None = None,
    source_post_id: str | None = None,
    incident_id: str | None = None,
    commander_id: str | None = None,
) -> Result:
    """A new ongoing incident in ``playbook``'s team, commanded by ``commander_id`` (default: its
    creator; :func:`domain.playbooks.start_commander` says who).

    The incident gets its own copy of the playbook's stages and update settings, so later edits
    to the playbook never touch it; the playbook's followers follow it, and when the playbook has
    a default update interval the first update is due that long after the start.
    ``public`` defaults to the playbook's setting.
    Validate the name early with :func:`domain.validation.incident_name` before
    creating the channel; it is checked again here.
    """
    commander = commander_id or creator_id
    interval = playbook.updates.interval_ms
    incident = Incident(
        id=incident_id or new_id(),
        team_id=playbook.team_id,
        channel_id=channel_id,
        name=validation.incident_name(name),
        description=validation.incident_description(description),
        commander_id=commander,
        creator_id=creator_id,
        playbook_id=playbook.id,
        playbook_title=playbook.title,
        stages=copy_stages(playbook.stages),
        active_stage=0,
        status=IncidentStatus.ONGOING,
        created_at=now,
        source_post_id=source_post_id,
        public=playbook.create_public_channel if public is None else public,
        updates=playbook.updates,
        follower_ids=initial_followers(playbook.auto_follower_ids),
        webhooks=playbook.webhooks,
        next_update_due_at=None if interval is None else now + interval,
        fields=playbook.fields,
        retro=playbook.retro,
    )
    details: dict[str, object] = {"playbook_id": playbook.id, "source_post_id": source_post_id}
    if commander != creator_id:
        details["commander_id"] = commander
    created = event(incident, EventKind.CREATED, creator_id, now, **details)
    return incident, [created]


def change_commander(
    incident: Incident,
    new_commander_id: str,
    actor: str,
    now: int,
    *,
    new_commander_in_channel: bool,
) -> Result:
    """Hand the incident to another member of its channel."""
    require_ongoing(incident)
    if new_commander_id == incident.commander_id:
        return incident, []
    if not new_commander_in_channel:
        raise ValidationError(
            "The commander must be a member of the incident channel:"
            " add that user to the channel first, then make them commander."
        )
    updated = incident.model_copy(update={"commander_id": new_commander_id})
    return updated, [
        event(
            incident,
            EventKind.COMMANDER_CHANGED,
            actor,
            now,
            previous_commander_id=incident.commander_id,
            commander_id=new_commander_id,
        )
    ]


def set_stage(incident: Incident, stage: int, actor: str, now: int) -> Result:
    """Make stage ``stage`` (0-based) the active one."""
    require_ongoing(incident)
    count = len(incident.stages)
    if not 0 <= stage < count:
        raise ValidationError(f"Stage {stage + 1} does not exist: choose a stage from 1 to {count}.")
    if stage == incident.active_stage:
        return incident, []
    updated = incident.model_copy(
        update={"active_stage": stage, "stage_set_at": moment_after(now, incident.stage_set_at)})
    return updated, [
        event(
            incident,
            EventKind.STAGE_CHANGED,
            actor,
            now,
            previous_stage=incident.active_stage,
            stage=stage,
            title=incident.stages[stage].title,
        )
    ]


def next_stage(incident: Incident, actor: str, now: int) -> Result:
    """Advance to the following stage."""
    require_ongoing(incident)
    if incident.active_stage + 1 >= len(incident.stages):
        raise InvalidState(f"This is already the last stage. Type {COMMAND}end when the incident is over.")
    return set_stage(incident, incident.active_stage + 1, actor, now)


def previous_stage(incident: Incident, actor: str, now: int) -> Result:
    """Go back to the preceding stage."""
    require_ongoing(incident)
    if incident.active_stage == 0:
        raise InvalidState("This is already the first stage.")
    return set_stage(incident, incident.active_stage - 1, actor, now)


def end_incident(incident: Incident, actor: str, now: int, *, final_update: str = "") -> Result:
    """End the incident: its duration stops and it becomes read-only until restarted.

    No update is due any more. A non-blank ``final_update`` is recorded as a last status update
    (before the end, in the same write).
    """
    if not incident.is_ongoing:
        raise InvalidState(f"This incident has already ended. Type {COMMAND}restart to reopen it.")
    ended_at = max(now, incident.created_at)
    fields: dict[str, object] = {"status": IncidentStatus.ENDED, "ended_at": ended_at,
                                 "next_update_due_at": None, "update_requested_at": None}
    if incident.retro_status is None:
        fields["retro_status"] = RetroStatus.PENDING  # a retrospective is due (issue 18)
    final_events: list[TimelineEvent] = []
    if final_update.strip():
        update_fields, final_events = final_update_event(incident, final_update, actor, now)
        fields.update(update_fields)
    updated = incident.model_copy(update=fields)
    return updated, [
        *final_events,
        event(
            incident,
            EventKind.ENDED,
            actor,
            now,
            duration_ms=updated.duration_ms(now),
            steps_done=incident.steps_done,
            steps_total=incident.steps_total,
        )
    ]


def restart_incident(incident: Incident, actor: str, now: int) -> Result:
    """Reopen an ended incident; its duration runs again from the original start.

    A reopened incident is live again, so with a default update interval the next update is due
    that long after the restart (as after a start); without one, none is due.
    """
    if incident.is_ongoing:
        raise InvalidState("This incident is still ongoing; there is nothing to restart.")
    interval = incident.updates.interval_ms
    updated = incident.model_copy(update={"status": IncidentStatus.ONGOING, "ended_at": None,
                                          "restarted_at": moment_after(now, incident.restarted_at),
                                          "next_update_due_at": None if interval is None else now + interval})
    return updated, [event(incident, EventKind.RESTARTED, actor, now)]


def set_card_post(incident: Incident, post_id: str | None) -> Incident:
    """Remember which post is the incident card (no timeline event)."""
    return incident.model_copy(update={"card_post_id": post_id})

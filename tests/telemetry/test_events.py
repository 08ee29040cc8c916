"""The event mapping: each domain change gives exactly the documented event, made of ids and counts."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import checklist, incidents, playbooks
from domain.ids import is_valid_id, new_id
from domain.models import EventKind, StepRef, TimelineEvent
from telemetry import (
    ALLOWED_PROPERTIES,
    METADATA_PROPERTIES,
    PlaybookChange,
    TelemetryEvent,
    event_for_playbook_change,
    events_for_incident_change,
)

T0 = 1_700_000_000_000
TEAM, ALICE, BOB, CHANNEL, SOURCE_POST = (new_id() for _ in range(5))
MAX_EXAMPLES = int(os.environ.get("CC_HYPOTHESIS_EXAMPLES", "150"))
README = Path(__file__).resolve().parents[2] / "README.md"


def make_playbook(title="Incident Response", stages=(("Triage", ("Ack", "Assess")), ("Fix", ("Apply",))),
                  command="/echo hi"):
    drafts = [playbooks.StageDraft(title=stage, steps=tuple(playbooks.StepDraft(title=step, command=command)
                                                           for step in steps)) for stage, steps in stages]
    return playbooks.new_playbook(team_id=TEAM, title=title, created_by=ALICE, now=T0, stages=drafts,
                                  member_ids=[ALICE, BOB])


def started(playbook=None, name="Database down", description="", source_post_id=SOURCE_POST):
    return incidents.start_incident(playbook or make_playbook(), name=name, description=description,
                                    channel_id=CHANNEL, creator_id=ALICE, now=T0, source_post_id=source_post_id)


def only(pairs):
    assert len(pairs) == 1, pairs
    return pairs[0]


def test_incident_created_carries_the_guide_fields():
    incident, events = started()
    name, props = only(events_for_incident_change(incident, events))
    assert name == TelemetryEvent.INCIDENT_CREATED == "incident_created"
    assert props == {"ID": incident.id, "IsActive": True, "CommanderUserID": ALICE, "TeamID": TEAM,
                     "CreatedAt": T0, "ChannelIDs": [CHANNEL], "PostID": SOURCE_POST, "NumChecklists": 2,
                     "TotalChecklistItems": 3}


def test_incident_without_a_source_post_has_an_empty_post_id():
    incident, events = started(source_post_id=None)
    assert only(events_for_incident_change(incident, events))[1]["PostID"] == ""


def test_ended_and_restarted_name_who_did_it():
    incident, _ = started()
    incident, _ = incidents.change_commander(incident, BOB, ALICE, T0 + 1, new_commander_in_channel=True)
    ended, events = incidents.end_incident(incident, BOB, T0 + 10)
    name, props = only(events_for_incident_change(ended, events))
    assert name == "incident_ended"
    assert props["IsActive"] is False and props["UserID"] == BOB and props["CommanderUserID"] == BOB
    assert props["ID"] == incident.id and props["CreatedAt"] == T0
    restarted, events = incidents.restart_incident(ended, ALICE, T0 + 20)
    name, props = only(events_for_incident_change(restarted, events))
    assert name == "incident_restarted" and props["IsActive"] is True and props["UserID"] == ALICE


def test_every_change_maps_to_its_event():
    incident, _ = started()
    first = StepRef(0, 0)
    operations = [
        (lambda i: checklist.check_step(i, first, BOB, T0), "checklist_item_checked"),
        (lambda i: checklist.uncheck_step(i, first, BOB, T0), "checklist_item_unchecked"),
        (lambda i: checklist.assign_step(i, first, BOB, BOB, T0, assignee_in_channel=True),
         "checklist_item_assigned"),
        (lambda i: checklist.run_step(i, first, BOB, T0), "checklist_item_command_run"),
        (lambda i: checklist.add_step(i, 0, "New one", BOB, T0), "checklist_item_created"),
        (lambda i: checklist.rename_step(i, first, "Renamed", BOB, T0), "checklist_item_renamed"),
        (lambda i: checklist.move_step(i, first, 1, BOB, T0), "checklist_item_moved"),
        (lambda i: checklist.remove_step(i, first, BOB, T0), "checklist_item_removed"),
        (lambda i: incidents.next_stage(i, BOB, T0), "stage_changed"),
    ]
    for operation, expected in operations:
        incident, events = operation(incident)
        name, props = only(events_for_incident_change(incident, events))
        assert name == expected
        assert props == {"IncidentID": incident.id, "UserID": BOB}
    incident, events = incidents.change_commander(incident, BOB, ALICE, T0, new_commander_in_channel=True)
    assert only(events_for_incident_change(incident, events)) == (
        "commander_changed", {"IncidentID": incident.id, "UserID": ALICE, "CommanderUserID": BOB})


def test_untracked_kinds_and_no_events_give_nothing():
    incident, _ = started()
    for kind in (EventKind.POST_PINNED,):
        event = TimelineEvent(id=new_id(), incident_id=incident.id, at=T0, kind=kind, actor_id=ALICE,
                              details={"message": "secret"})
        assert events_for_incident_change(incident, [event]) == []
    assert events_for_incident_change(incident, []) == []


def test_playbook_events():
    playbook = make_playbook()
    for change, expected in (("created", "playbook_created"), (PlaybookChange.UPDATED, "playbook_updated"),
                             ("deleted", "playbook_deleted")):
        name, props = event_for_playbook_change(change, playbook)
        assert name == expected
        assert props == {"PlaybookID": playbook.id, "TeamID": TEAM, "NumChecklists": 2, "TotalChecklistItems": 3}


def test_every_kind_of_the_domain_is_either_tracked_or_deliberately_not():
    incident, _ = started()
    tracked = set()
    for kind in EventKind:
        event = TimelineEvent(id=new_id(), incident_id=incident.id, at=T0, kind=kind, actor_id=ALICE)
        tracked.update(name for name, _ in events_for_incident_change(incident, [event]))
    playbook_events = {"playbook_created", "playbook_updated", "playbook_deleted",
                       "reminder_sent"}  # not a timeline event: services/reminders.py sends it
    assert tracked | playbook_events == {event.value for event in TelemetryEvent}


def test_the_readme_table_documents_exactly_these_events_and_properties():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Telemetry", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"^\| `([a-z_]+)` \|[^|]*\| (.*) \|$", line)
        if match:
            rows[match.group(1)] = set(re.findall(r"`([A-Za-z]+)`", match.group(2)))
    assert set(rows) == {event.value for event in TelemetryEvent}
    for event, allowed in ALLOWED_PROPERTIES.items():
        assert rows[event.value] == set(allowed), event
    for key in METADATA_PROPERTIES:
        assert f"`{key}`" in section


# Content never leaks ---------------------------------------------------------------------------

# Random user text, wrapped in marks so that a short random string cannot match an id by chance.
line = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30).map(lambda t: f"«{t}»")


def strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def assert_ids_and_counts_only(name, props, secrets):
    assert set(props) == ALLOWED_PROPERTIES[TelemetryEvent(name)], name
    for key, value in props.items():
        assert isinstance(value, (str, bool, int, list)), (key, value)
        for text in strings_in(value):
            assert text == "" or is_valid_id(text), (name, key, value)
    dumped = json.dumps(props, ensure_ascii=False)
    for secret in secrets:
        assert secret not in dumped


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(title=line, stage=line, steps=st.lists(line, min_size=1, max_size=4), command=line, name=line,
       description=line, new_step=line, renamed=line)
def test_no_text_reaches_any_event(title, stage, steps, command, name, description, new_step, renamed):
    playbook = make_playbook(title=title, stages=((stage, tuple(steps)),), command="/" + command)
    secrets = {title, stage, command, name, description, new_step, renamed, *steps}
    incident, events = started(playbook, name=name, description=description)
    collected = events_for_incident_change(incident, events)
    for operation in (
        lambda i: checklist.add_step(i, 0, new_step, BOB, T0, description=description, command="/" + command),
        lambda i: checklist.rename_step(i, StepRef(0, 0), renamed, BOB, T0),
        lambda i: checklist.check_step(i, StepRef(0, 0), BOB, T0),
        lambda i: checklist.uncheck_step(i, StepRef(0, 0), BOB, T0),
        lambda i: checklist.run_step(i, StepRef(0, 0), BOB, T0),
        lambda i: checklist.assign_step(i, StepRef(0, 1), BOB, BOB, T0, assignee_in_channel=True),
        lambda i: checklist.move_step(i, StepRef(0, 0), 1, BOB, T0),
        lambda i: checklist.remove_step(i, StepRef(0, 1), BOB, T0),
        lambda i: incidents.change_commander(i, BOB, ALICE, T0, new_commander_in_channel=True),
        lambda i: incidents.end_incident(i, BOB, T0 + 5),
        lambda i: incidents.restart_incident(i, BOB, T0 + 6),
    ):
        incident, events = operation(incident)
        collected.extend(events_for_incident_change(incident, events))
    for change in PlaybookChange:
        collected.append(event_for_playbook_change(change, playbook))
    assert len(collected) == 15 - (renamed == steps[0])  # renaming to the same title is no change
    for event_name, props in collected:
        assert_ids_and_counts_only(event_name, props, secrets)

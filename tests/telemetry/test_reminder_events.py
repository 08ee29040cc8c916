"""Telemetry of status updates, reminders, requests and followers (issue 17): ids, flags and counts
only — the update's text never reaches an event (the content-free property, extended)."""

from __future__ import annotations

from hypothesis import given, settings

from domain import updates
from telemetry import event_for_reminder_sent, events_for_incident_change
from tests.telemetry.test_events import (
    ALICE,
    BOB,
    MAX_EXAMPLES,
    T0,
    assert_ids_and_counts_only,
    line,
    only,
    started,
)


def test_each_update_operation_maps_to_its_event():
    incident, _ = started(name="Database down")
    incident, events = updates.post_update(incident, "All good", BOB, T0, next_in_ms=30 * 60_000)
    assert only(events_for_incident_change(incident, events)) == (
        "update_posted", {"IncidentID": incident.id, "UserID": BOB, "IsFinal": False, "HasNextUpdate": True})
    incident, events = updates.snooze_reminder(incident, ALICE, T0 + 1)
    assert only(events_for_incident_change(incident, events)) == (
        "reminder_snoozed", {"IncidentID": incident.id, "UserID": ALICE})
    incident, events = updates.request_update(incident, BOB, T0 + 2)
    assert only(events_for_incident_change(incident, events)) == (
        "update_requested", {"IncidentID": incident.id, "UserID": BOB, "CommanderUserID": ALICE})
    incident, events = updates.follow(incident, BOB, T0 + 3)
    assert only(events_for_incident_change(incident, events))[0] == "incident_followed"
    incident, events = updates.unfollow(incident, BOB, T0 + 4)
    assert only(events_for_incident_change(incident, events))[0] == "incident_unfollowed"
    assert event_for_reminder_sent(incident, late=True, posts=2) == (
        "reminder_sent", {"IncidentID": incident.id, "CommanderUserID": ALICE, "IsLate": True, "NumPosts": 2})


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(name=line, text=line, description=line)
def test_no_update_text_reaches_any_event(name, text, description):
    incident, events = started(name=name, description=description)
    collected = events_for_incident_change(incident, events)
    for operation in (
        lambda i: updates.post_update(i, text, BOB, T0 + 1, next_in_ms=15 * 60_000),
        lambda i: updates.snooze_reminder(i, ALICE, T0 + 2),
        lambda i: updates.request_update(i, BOB, T0 + 3),
        lambda i: updates.follow(i, BOB, T0 + 4),
        lambda i: updates.unfollow(i, BOB, T0 + 5),
        lambda i: updates.post_update(i, text, ALICE, T0 + 6, next_in_ms=None),
    ):
        incident, events = operation(incident)
        collected.extend(events_for_incident_change(incident, events))
    collected.append(event_for_reminder_sent(incident, late=False, posts=1))
    assert len(collected) == 8
    for event_name, props in collected:
        assert_ids_and_counts_only(event_name, props, {name, text, description})

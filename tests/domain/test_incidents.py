"""Starting an incident and its lifecycle operations."""

from __future__ import annotations

import pytest

from domain import checklist, incidents, playbooks
from domain.errors import InvalidState, ValidationError
from domain.models import EventKind, IncidentStatus, StepRef, StepState

from .helpers import T0, incident, playbook


def test_start_copies_stages_independently_with_new_ids():
    pb = playbook(public=False)
    inc, events = incidents.start_incident(
        pb, name=" DB down ", channel_id="c1", creator_id="alice", now=T0, source_post_id="post1"
    )
    assert inc.name == "DB down" and inc.commander_id == inc.creator_id == "alice"
    assert inc.team_id == pb.team_id and inc.playbook_id == pb.id and inc.playbook_title == pb.title
    assert inc.status is IncidentStatus.ONGOING and inc.active_stage == 0 and inc.public is False
    assert [s.title for s in inc.stages] == [s.title for s in pb.stages]
    pb_ids = {s.id for s in pb.stages} | {st.id for s in pb.stages for st in s.steps}
    inc_ids = {s.id for s in inc.stages} | {st.id for s in inc.stages for st in s.steps}
    assert not pb_ids & inc_ids
    assert all(step.state is StepState.OPEN for stage in inc.stages for step in stage.steps)
    assert [e.kind for e in events] == [EventKind.CREATED] and events[0].details["source_post_id"] == "post1"
    # Editing the playbook afterwards does not touch the incident.
    edited = playbooks.edit_playbook(pb, now=T0 + 1, stages=[playbooks.StageDraft(title="Only")])
    assert len(edited.stages) == 1 and len(inc.stages) == 3


def test_start_validates_the_name():
    with pytest.raises(ValidationError, match="2–64"):
        incidents.start_incident(playbook(), name="x", channel_id="c", creator_id="a", now=T0)


def test_change_commander_only_to_channel_members():
    inc = incident()
    with pytest.raises(ValidationError, match="add that user to the channel first"):
        incidents.change_commander(inc, "bob", "alice", T0, new_commander_in_channel=False)
    changed, events = incidents.change_commander(inc, "bob", "alice", T0, new_commander_in_channel=True)
    assert changed.commander_id == "bob"
    assert events[0].kind is EventKind.COMMANDER_CHANGED
    assert events[0].details == {"previous_commander_id": "alice", "commander_id": "bob"}
    assert incidents.change_commander(changed, "bob", "x", T0, new_commander_in_channel=True) == (changed, [])


def test_stage_changes():
    inc = incident()
    nxt, events = incidents.next_stage(inc, "bob", T0)
    assert nxt.active_stage == 1 and events[0].details == {"previous_stage": 0, "stage": 1, "title": "Investigation"}
    assert incidents.set_stage(nxt, 1, "bob", T0) == (nxt, [])
    last, _ = incidents.set_stage(nxt, 2, "bob", T0)
    with pytest.raises(InvalidState, match="already the last stage"):
        incidents.next_stage(last, "bob", T0)
    with pytest.raises(InvalidState, match="already the first stage"):
        incidents.previous_stage(inc, "bob", T0)
    with pytest.raises(ValidationError, match="Stage 4 does not exist: choose a stage from 1 to 3"):
        incidents.set_stage(inc, 3, "bob", T0)
    back, _ = incidents.previous_stage(last, "bob", T0)
    assert back.active_stage == 1


def test_end_and_restart():
    inc, _ = checklist.check_step(incident(), StepRef(0, 0), "bob", T0 + 1)
    ended, events = incidents.end_incident(inc, "bob", T0 + 60_000)
    assert ended.status is IncidentStatus.ENDED and ended.ended_at == T0 + 60_000
    assert ended.duration_ms(T0 + 999_999) == 60_000
    assert events[0].details == {"duration_ms": 60_000, "steps_done": 1, "steps_total": 9}
    with pytest.raises(InvalidState, match="already ended"):
        incidents.end_incident(ended, "bob", T0)
    reopened, events = incidents.restart_incident(ended, "carol", T0 + 70_000)
    assert reopened.is_ongoing and reopened.ended_at is None and events[0].kind is EventKind.RESTARTED
    assert reopened.duration_ms(T0 + 80_000) == 80_000
    with pytest.raises(InvalidState, match="still ongoing"):
        incidents.restart_incident(reopened, "bob", T0)


def test_set_card_post():
    inc = incident()
    assert incidents.set_card_post(inc, "post9").card_post_id == "post9"
    assert inc.card_post_id is None

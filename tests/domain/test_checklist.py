"""Checklist editing on an incident's own copy of the stages."""

from __future__ import annotations

import pytest

from domain import checklist, incidents, limits
from domain.errors import COMMAND, InvalidState, NotFound, ValidationError
from domain.models import EventKind, StepRef, StepState

from .helpers import T0, incident


def test_check_records_who_and_when_and_one_event():
    inc = incident()
    done, events = checklist.check_step(inc, StepRef(1, 2), "bob", T0 + 5)
    step = done.step(StepRef(1, 2))
    assert step.state is StepState.DONE and step.state_changed_by == "bob" and step.state_changed_at == T0 + 5
    assert [e.kind for e in events] == [EventKind.STEP_CHECKED]
    assert events[0].details["step_id"] == step.id and events[0].actor_id == "bob" and events[0].at == T0 + 5
    assert inc.step(StepRef(1, 2)).state is StepState.OPEN  # the original is untouched
    assert done.steps_done == 1 and done.steps_total == 9


def test_checking_twice_is_a_noop_without_event():
    inc, _ = checklist.check_step(incident(), StepRef(0, 0), "bob", T0 + 1)
    again, events = checklist.check_step(inc, StepRef(0, 0), "carol", T0 + 2)
    assert again is inc and events == []
    assert again.step(StepRef(0, 0)).state_changed_by == "bob"


def test_uncheck_then_uncheck_again():
    inc, _ = checklist.check_step(incident(), StepRef(0, 0), "bob", T0 + 1)
    open_, events = checklist.uncheck_step(inc, StepRef(0, 0), "carol", T0 + 2)
    assert open_.step(StepRef(0, 0)).state is StepState.OPEN
    assert [e.kind for e in events] == [EventKind.STEP_UNCHECKED]
    assert checklist.uncheck_step(open_, StepRef(0, 0), "carol", T0 + 3) == (open_, [])


def test_steps_can_be_addressed_by_id_which_survives_moves():
    inc = incident()
    step_id = inc.step(StepRef(0, 2)).id
    moved, _ = checklist.move_step(inc, step_id, 0, "bob", T0)
    checked, _ = checklist.check_step(moved, step_id, "bob", T0)
    assert checked.step(StepRef(0, 0)).id == step_id and checked.step(StepRef(0, 0)).done


def test_missing_step_messages_name_the_stage_and_its_size():
    inc = incident()
    with pytest.raises(NotFound, match=r'Step 2\.7 does not exist: stage 2 "Investigation" has 3 steps\.'):
        checklist.check_step(inc, StepRef(1, 6), "bob", T0)
    with pytest.raises(NotFound, match=r"Step 5\.1 does not exist: this incident has 3 stages\."):
        checklist.check_step(inc, StepRef(4, 0), "bob", T0)
    with pytest.raises(NotFound, match="no longer in this incident's checklist"):
        checklist.check_step(inc, "nosuchid", "bob", T0)


def test_assign_requires_channel_membership_and_clears_with_none():
    inc = incident()
    with pytest.raises(ValidationError, match="add that user to the channel first"):
        checklist.assign_step(inc, StepRef(0, 1), "mallory", "bob", T0, assignee_in_channel=False)
    assigned, events = checklist.assign_step(inc, StepRef(0, 1), "carol", "bob", T0, assignee_in_channel=True)
    assert assigned.step(StepRef(0, 1)).assignee_id == "carol"
    assert events[0].kind is EventKind.STEP_ASSIGNED and events[0].details["assignee_id"] == "carol"
    assert checklist.assign_step(assigned, StepRef(0, 1), "carol", "bob", T0, assignee_in_channel=True) == (assigned, [])
    cleared, events = checklist.assign_step(assigned, StepRef(0, 1), None, "bob", T0, assignee_in_channel=False)
    assert cleared.step(StepRef(0, 1)).assignee_id is None
    assert events[0].details == {**events[0].details, "assignee_id": None, "previous_assignee_id": "carol"}


def test_run_records_an_event_only_for_steps_with_a_command():
    inc = incident()
    ran, events = checklist.run_step(inc, StepRef(0, 0), "bob", T0)
    assert events[0].kind is EventKind.STEP_RUN and events[0].details["command"] == "/echo hi"
    # Only when it last ran changes (the Run button is bound to it: domain/freshness.py).
    assert ran.stages[0].steps[0] == inc.stages[0].steps[0].model_copy(update={"last_run_at": T0})
    with pytest.raises(InvalidState, match=r"Step 1\.2 has no slash command"):
        checklist.run_step(inc, StepRef(0, 1), "bob", T0)


def test_add_remove_rename():
    inc = incident()
    added, events = checklist.add_step(inc, 1, "  Page the DBA  ", "bob", T0, command="/page dba")
    assert added.stages[1].steps[-1].title == "Page the DBA" and len(added.stages[1].steps) == 4
    assert events[0].kind is EventKind.STEP_ADDED and events[0].details["index"] == 3
    first, _ = checklist.add_step(added, 1, "First", "bob", T0, position=0)
    assert first.stages[1].steps[0].title == "First"
    renamed, events = checklist.rename_step(first, StepRef(1, 0), "Really first", "bob", T0)
    assert renamed.stages[1].steps[0].title == "Really first"
    assert events[0].details["previous_title"] == "First"
    assert checklist.rename_step(renamed, StepRef(1, 0), "Really first", "bob", T0) == (renamed, [])
    removed, events = checklist.remove_step(renamed, StepRef(1, 0), "bob", T0)
    assert [s.title for s in removed.stages[1].steps] == ["Step 2.1", "Step 2.2", "Step 2.3", "Page the DBA"]
    assert events[0].kind is EventKind.STEP_REMOVED and events[0].details["title"] == "Really first"
    with pytest.raises(ValidationError, match="step title"):
        checklist.add_step(inc, 0, "", "bob", T0)
    with pytest.raises(ValidationError, match="Stage 9 does not exist"):
        checklist.add_step(inc, 8, "x", "bob", T0)


def test_stage_step_limit():
    inc = incident(stages=1, steps=limits.STEPS_PER_STAGE_MAX)
    with pytest.raises(ValidationError, match="maximum of 50 steps"):
        checklist.add_step(inc, 0, "one too many", "bob", T0)


def test_move_within_and_across_stages():
    inc = incident()
    def titles(i, s):
        return [step.title for step in i.stages[s].steps]
    moved, events = checklist.move_step(inc, StepRef(0, 0), 2, "bob", T0)
    assert titles(moved, 0) == ["Step 1.2", "Step 1.3", "Step 1.1"]
    assert events[0].details["from_index"] == 0 and events[0].details["index"] == 2
    assert checklist.move_step(moved, StepRef(0, 2), 2, "bob", T0) == (moved, [])
    across, _ = checklist.move_step(moved, StepRef(0, 2), 0, "bob", T0, to_stage=2)
    assert titles(across, 0) == ["Step 1.2", "Step 1.3"] and titles(across, 2)[0] == "Step 1.1"
    with pytest.raises(ValidationError, match=r'Position 4 is out of range for stage 1 "Triage": choose 1 to 3'):
        checklist.move_step(inc, StepRef(0, 0), 3, "bob", T0)


def test_ended_incidents_are_read_only():
    ended, _ = incidents.end_incident(incident(), "bob", T0 + 10)
    message = f"This incident has ended. Type {COMMAND}restart to reopen it."  # COMMAND: /<trigger> when shown
    operations = [
        lambda i: checklist.check_step(i, StepRef(0, 0), "bob", T0),
        lambda i: checklist.uncheck_step(i, StepRef(0, 0), "bob", T0),
        lambda i: checklist.assign_step(i, StepRef(0, 0), "bob", "bob", T0, assignee_in_channel=True),
        lambda i: checklist.run_step(i, StepRef(0, 0), "bob", T0),
        lambda i: checklist.add_step(i, 0, "x", "bob", T0),
        lambda i: checklist.remove_step(i, StepRef(0, 0), "bob", T0),
        lambda i: checklist.rename_step(i, StepRef(0, 0), "x", "bob", T0),
        lambda i: checklist.move_step(i, StepRef(0, 0), 1, "bob", T0),
        lambda i: incidents.set_stage(i, 1, "bob", T0),
        lambda i: incidents.change_commander(i, "bob", "bob", T0, new_commander_in_channel=True),
    ]
    for operation in operations:
        with pytest.raises(InvalidState) as info:
            operation(ended)
        assert info.value.message == message

"""Property tests: any sequence of checklist operations keeps the checklist's invariants.

A tiny reference model (lists of step ids per stage, plus states) is updated
next to the real incident; after every operation the two must agree, ids must
be unique, positions dense, states valid, and each real change must produce
exactly one timeline event. Failed operations must change nothing.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain import checklist, incidents, limits
from domain.errors import DomainError, InvalidState, NotFound, ValidationError
from domain.models import EventKind, StepRef, StepState

from .helpers import T0, incident

MAX_EXAMPLES = int(os.environ.get("CC_HYPOTHESIS_EXAMPLES", "150"))

titles = st.text(alphabet="abc XYZ-_.é", min_size=1, max_size=12).filter(lambda t: t.strip())
index = st.integers(0, 60)
stage_index = st.integers(0, 3)  # 3 is one past the last stage


class ChecklistMachine(RuleBasedStateMachine):
    """Drives random operations against one incident and a reference model."""

    def __init__(self) -> None:
        super().__init__()
        self.incident = incident(stages=3, steps=2)
        self.model = [[step.id for step in stage.steps] for stage in self.incident.stages]
        self.done = {step_id: False for stage in self.model for step_id in stage}
        self.titles = {step.id: step.title for stage in self.incident.stages for step in stage.steps}
        self.removed: list[str] = []
        self.active = 0
        self.now = T0

    # -- helpers ----------------------------------------------------------------------------
    def tick(self) -> int:
        self.now += 1
        return self.now

    def target(self, stage: int, idx: int) -> StepRef:
        """A position that exists about 3 times in 4, otherwise one past the end."""
        count = len(self.model[stage]) if stage < len(self.model) else 0
        return StepRef(stage, idx % (count + 1) if count else idx % 2)

    def exists(self, ref: StepRef) -> bool:
        return ref.stage < len(self.model) and ref.index < len(self.model[ref.stage])

    def run(self, operation, expected_error: type[DomainError] | None, *, changes: bool = True):
        before = self.incident
        try:
            after, events = operation(before)
        except DomainError as exc:
            assert expected_error is not None and isinstance(exc, expected_error), repr(exc)
            assert exc.message and exc.message[-1] in ".!"
            return None
        assert expected_error is None, f"expected {expected_error.__name__}"
        if changes:
            assert len(events) == 1 and events[0].incident_id == before.id and events[0].at == self.now
        else:
            assert after is before and events == []
        self.incident = after
        return events

    def ongoing_or(self, error: type[DomainError] | None) -> type[DomainError] | None:
        return InvalidState if not self.incident.is_ongoing else error

    # -- rules -----------------------------------------------------------------------------------
    @rule(stage=stage_index, pos=index, title=titles)
    def add(self, stage, pos, title):
        now = self.tick()
        count = len(self.model[stage]) if stage < 3 else 0
        pos = pos % (count + 2) if stage < 3 else 0
        error = None
        if stage >= 3 or count >= limits.STEPS_PER_STAGE_MAX or pos > count:
            error = ValidationError
        error = self.ongoing_or(error)
        events = self.run(lambda i: checklist.add_step(i, stage, title, "u", now, position=pos), error)
        if events:
            new_id = events[0].details["step_id"]
            assert new_id not in self.done
            self.model[stage].insert(pos, new_id)
            self.done[new_id] = False
            self.titles[new_id] = title.strip()

    @rule(stage=stage_index, idx=index)
    def remove(self, stage, idx):
        now = self.tick()
        ref = self.target(stage, idx)
        error = self.ongoing_or(None if self.exists(ref) else NotFound)
        events = self.run(lambda i: checklist.remove_step(i, ref, "u", now), error)
        if events:
            gone = self.model[ref.stage].pop(ref.index)
            assert events[0].details["step_id"] == gone
            self.removed.append(gone)
            del self.done[gone]

    @rule(stage=stage_index, idx=index, done=st.booleans(), by_id=st.booleans())
    def set_state(self, stage, idx, done, by_id):
        now = self.tick()
        ref = self.target(stage, idx)
        if self.exists(ref):
            step_id = self.model[ref.stage][ref.index]
            target = step_id if by_id else ref
            error = self.ongoing_or(None)
            changes = self.done[step_id] != done
        else:
            step_id = None
            target = (self.removed[idx % len(self.removed)] if self.removed else "missing") if by_id else ref
            error = self.ongoing_or(NotFound)
            changes = True
        op = checklist.check_step if done else checklist.uncheck_step
        events = self.run(lambda i: op(i, target, "u", now), error, changes=changes)
        if events:
            assert events[0].kind is (EventKind.STEP_CHECKED if done else EventKind.STEP_UNCHECKED)
            self.done[step_id] = done

    @rule(stage=stage_index, idx=index, to_stage=st.one_of(st.none(), stage_index), new_idx=index)
    def move(self, stage, idx, to_stage, new_idx):
        now = self.tick()
        ref = self.target(stage, idx)
        dest = ref.stage if to_stage is None else to_stage
        error = None
        changes = True
        if not self.exists(ref):
            error = NotFound
        elif dest >= 3:
            error = ValidationError
        else:
            last = len(self.model[dest]) - (1 if dest == ref.stage else 0)
            new_idx = new_idx % (last + 2)
            if new_idx > last or (dest != ref.stage and len(self.model[dest]) >= limits.STEPS_PER_STAGE_MAX):
                error = ValidationError
            changes = not (dest == ref.stage and new_idx == ref.index)
        error = self.ongoing_or(error)
        events = self.run(
            lambda i: checklist.move_step(i, ref, new_idx, "u", now, to_stage=to_stage), error, changes=changes
        )
        if events:
            step_id = self.model[ref.stage].pop(ref.index)
            self.model[dest].insert(new_idx, step_id)

    @rule(stage=stage_index, idx=index, title=titles)
    def rename(self, stage, idx, title):
        now = self.tick()
        ref = self.target(stage, idx)
        error = self.ongoing_or(None if self.exists(ref) else NotFound)
        changes = error is not None or self.titles[self.model[ref.stage][ref.index]] != title.strip()
        events = self.run(lambda i: checklist.rename_step(i, ref, title, "u", now), error, changes=changes)
        if events:
            self.titles[self.model[ref.stage][ref.index]] = title.strip()

    @rule(stage=stage_index, idx=index, who=st.sampled_from([None, "bob", "carol"]))
    def assign(self, stage, idx, who):
        now = self.tick()
        ref = self.target(stage, idx)
        error = self.ongoing_or(None if self.exists(ref) else NotFound)
        changes = error is not None or self.incident.step(ref).assignee_id != who
        self.run(
            lambda i: checklist.assign_step(i, ref, who, "u", now, assignee_in_channel=True), error, changes=changes
        )

    @rule(stage=stage_index)
    def set_stage(self, stage):
        now = self.tick()
        error = self.ongoing_or(None if stage < 3 else ValidationError)
        changes = error is not None or stage != self.active
        events = self.run(lambda i: incidents.set_stage(i, stage, "u", now), error, changes=changes)
        if events:
            self.active = stage

    @precondition(lambda self: self.incident.is_ongoing)
    @rule()
    def end(self):
        now = self.tick()
        self.run(lambda i: incidents.end_incident(i, "u", now), None)

    @precondition(lambda self: not self.incident.is_ongoing)
    @rule()
    def restart(self):
        now = self.tick()
        self.run(lambda i: incidents.restart_incident(i, "u", now), None)

    # -- invariants ------------------------------------------------------------------------------
    @invariant()
    def matches_the_model(self):
        actual = [[step.id for step in stage.steps] for stage in self.incident.stages]
        assert actual == self.model

    @invariant()
    def ids_unique_and_nothing_lost(self):
        ids = [step.id for stage in self.incident.stages for step in stage.steps]
        assert len(ids) == len(set(ids)) == len(self.done)
        assert set(ids) == set(self.done)
        assert not set(ids) & set(self.removed)

    @invariant()
    def states_valid(self):
        for stage in self.incident.stages:
            assert len(stage.steps) <= limits.STEPS_PER_STAGE_MAX
            for step in stage.steps:
                assert step.state in (StepState.OPEN, StepState.DONE)
                assert step.done == self.done[step.id]
                assert (step.state_changed_at is None) == (step.state_changed_by is None)
                if step.done:
                    assert step.state_changed_at is not None
                assert step.title == self.titles[step.id]
        assert 0 <= self.incident.active_stage < len(self.incident.stages) == 3
        assert self.incident.active_stage == self.active
        assert self.incident.steps_done == sum(self.done.values())


ChecklistMachine.TestCase.settings = settings(
    max_examples=MAX_EXAMPLES, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestChecklistProperties = ChecklistMachine.TestCase

"""Playbook outline edits (domain/outline.py): pure operations on stage drafts, every rule and limit."""

from __future__ import annotations

import pytest

from domain import NotFound, ValidationError, limits, outline
from domain.playbooks import StageDraft, StepDraft, build_stages, drafts_of
from domain.refs import parse_step_ref


def stages(*spec: tuple[str, list[str]]) -> tuple[StageDraft, ...]:
    return tuple(StageDraft(title=t, steps=tuple(StepDraft(title=s) for s in steps)) for t, steps in spec)


def shape(drafts) -> list[tuple[str, list[str]]]:
    return [(stage.title, [step.title for step in stage.steps]) for stage in drafts]


BASE = stages(("Triage", ["Ack", "Assess"]), ("Fix", ["Patch"]))


# Stages -------------------------------------------------------------------------------------

def test_add_stage_appends_an_empty_stage_with_a_clean_title():
    change = outline.add_stage(BASE, "  Learn ")
    assert shape(change.stages) == [("Triage", ["Ack", "Assess"]), ("Fix", ["Patch"]), ("Learn", [])]
    assert (change.what, change.label, change.title) == ("stage add", "3", "Learn")
    assert shape(BASE)[2:] == []  # the input is left alone


def test_rename_stage():
    change = outline.rename_stage(BASE, "2", "Mitigate")
    assert shape(change.stages)[1] == ("Mitigate", ["Patch"])
    assert (change.label, change.title) == ("2", "Mitigate")


def test_remove_stage_takes_its_steps():
    change = outline.remove_stage(BASE, "1")
    assert shape(change.stages) == [("Fix", ["Patch"])]
    assert (change.label, change.title) == ("1", "Triage")


def test_the_last_stage_cannot_be_removed():
    with pytest.raises(ValidationError, match="at least one stage") as caught:
        outline.remove_stage(stages(("Only", ["a"])), "1")
    assert caught.value.field == "stages"


def test_move_stage():
    change = outline.move_stage(stages(("A", []), ("B", []), ("C", [])), "3", "1")
    assert [s.title for s in change.stages] == ["C", "A", "B"]
    assert (change.before, change.label) == ("3", "1")


@pytest.mark.parametrize("number, message", [("9", "Stage 9 does not exist: type a number from 1 to 2."),
                                             ("0", "Stage 0 does not exist"), ("x", "is not a stage number"),
                                             ("", "(nothing)")])
def test_a_stage_that_is_not_there_is_named(number, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        outline.rename_stage(BASE, number, "X")
    assert caught.value.field == "stages"


def test_at_most_the_stage_limit():
    full = stages(*[(f"S{i}", []) for i in range(limits.STAGES_MAX)])
    with pytest.raises(ValidationError, match=f"at most {limits.STAGES_MAX} stages"):
        outline.add_stage(full, "One more")


def test_stage_titles_are_validated():
    with pytest.raises(ValidationError, match="stage title must not be empty"):
        outline.add_stage(BASE, "  ")
    with pytest.raises(ValidationError, match="stage title must be"):
        outline.rename_stage(BASE, "1", "x" * (limits.STAGE_TITLE_MAX + 1))


# Steps --------------------------------------------------------------------------------------

def test_add_step_is_the_stage_s_last():
    change = outline.add_step(BASE, "2", "Verify")
    assert shape(change.stages)[1] == ("Fix", ["Patch", "Verify"])
    assert (change.label, change.title) == ("2.2", "Verify")


def test_add_step_needs_a_title_and_room():
    with pytest.raises(ValidationError, match="step add S <title>"):
        outline.add_step(BASE, "1", "")
    full = stages(("Big", [f"s{i}" for i in range(limits.STEPS_PER_STAGE_MAX)]))
    with pytest.raises(ValidationError, match="the most a stage may have"):
        outline.add_step(full, "1", "One more")


def test_remove_and_rename_step():
    removed = outline.remove_step(BASE, "1.1")
    assert shape(removed.stages)[0] == ("Triage", ["Assess"]) and removed.title == "Ack"
    renamed = outline.rename_step(BASE, "1.2", "Assess impact")
    assert shape(renamed.stages)[0] == ("Triage", ["Ack", "Assess impact"]) and renamed.label == "1.2"


def test_describe_command_and_assign_set_and_clear():
    described = outline.describe_step(BASE, "1.1", "Who is paged?")
    assert described.stages[0].steps[0].description == "Who is paged?" and described.value == "Who is paged?"
    assert outline.describe_step(described.stages, "1.1", "none").stages[0].steps[0].description == ""
    commanded = outline.set_step_command(BASE, "2.1", "/echo hi")
    assert commanded.stages[1].steps[0].command == "/echo hi"
    assert outline.set_step_command(commanded.stages, "2.1", "clear").value == ""
    assigned = outline.assign_step(BASE, "1.2", "u1")
    assert assigned.stages[0].steps[1].assignee_id == "u1" and assigned.value == "u1"
    assert outline.assign_step(assigned.stages, "1.2", None).stages[0].steps[1].assignee_id is None


def test_a_step_command_must_be_a_slash_command():
    with pytest.raises(ValidationError, match="must be a slash command") as caught:
        outline.set_step_command(BASE, "1.1", "echo hi")
    assert caught.value.field == "stages"


def test_move_step_within_and_across_stages():
    within = outline.move_step(BASE, "1.2", "1")
    assert shape(within.stages)[0] == ("Triage", ["Assess", "Ack"])
    assert (within.before, within.label, within.title) == ("1.2", "1.1", "Assess")
    across = outline.move_step(BASE, "1.1", "2.2")
    assert shape(across.stages) == [("Triage", ["Assess"]), ("Fix", ["Patch", "Ack"])]
    assert across.label == "2.2"


def test_move_step_refuses_positions_that_are_not_there():
    with pytest.raises(ValidationError, match="Position 4 does not exist in stage 2: choose 1 to 2"):
        outline.move_step(BASE, "1.1", "2.4")
    with pytest.raises(ValidationError, match="Stage 7 does not exist"):
        outline.move_step(BASE, "1.1", "7.1")
    with pytest.raises(ValidationError, match=r"step move S\.N <position>"):
        outline.move_step(BASE, "1.1", "up")


def test_move_step_into_a_full_stage_is_refused():
    full = stages(("A", ["a"]), ("B", [f"b{i}" for i in range(limits.STEPS_PER_STAGE_MAX)]))
    with pytest.raises(ValidationError, match="the most a stage may have"):
        outline.move_step(full, "1.1", "2.1")


@pytest.mark.parametrize("reference, error, message", [
    ("1.5", NotFound, "Step 1.5 does not exist: stage 1 has 2 steps."),
    ("2.2", NotFound, "Step 2.2 does not exist: stage 2 has 1 step."),
    ("3.1", ValidationError, "Stage 3 does not exist: type a number from 1 to 2."),
    ("2", ValidationError, "Write S.N"),  # an outline has no active stage: N alone is no step
    ("0.1", ValidationError, "numbered from 1"),
    ("one", ValidationError, "is not a step reference"),
])
def test_a_step_that_is_not_there_is_named(reference, error, message):
    with pytest.raises(error, match=message.replace(".", r"\.")) as caught:
        outline.remove_step(BASE, reference)
    assert caught.value.field == "stages"


def test_one_parser_reads_step_references_for_incidents_and_outlines():
    assert parse_step_ref("2.3", None) == (1, 2) == parse_step_ref("2.3", 0)
    assert parse_step_ref("3", 1) == (1, 2)
    with pytest.raises(ValidationError, match=r"Write S\.N"):
        parse_step_ref("3", None)


# Typed edits --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, verb, args, expected", [
    ("stage", "add", ["Post", "mortem"], [("Triage", ["Ack", "Assess"]), ("Fix", ["Patch"]), ("Post mortem", [])]),
    ("stage", "delete", ["2"], [("Triage", ["Ack", "Assess"])]),
    ("Step", "ADD", ["2", "Check", "logs"], [("Triage", ["Ack", "Assess"]), ("Fix", ["Patch", "Check logs"])]),
    ("step", "rename", ["2.1", "Hotfix", "it"], [("Triage", ["Ack", "Assess"]), ("Fix", ["Hotfix it"])]),
    ("step", "move", ["2.1", "1.1"], [("Triage", ["Patch", "Ack", "Assess"]), ("Fix", [])]),
])
def test_apply_runs_a_typed_edit(kind, verb, args, expected):
    assert shape(outline.apply(BASE, outline.OutlineEdit.of(kind, verb, args)).stages) == expected


def test_apply_description_is_describe_and_assign_takes_the_resolved_person():
    described = outline.apply(BASE, outline.OutlineEdit.of("step", "description", ["1.1", "Look", "first"]))
    assert described.what == "step describe" and described.stages[0].steps[0].description == "Look first"
    assigned = outline.apply(BASE, outline.OutlineEdit.of("step", "assign", ["1.1", "@dave"], assignee_id="d1"))
    assert assigned.stages[0].steps[0].assignee_id == "d1"


def test_an_unknown_edit_is_refused():
    with pytest.raises(ValidationError, match="Unknown edit"):
        outline.apply(BASE, outline.OutlineEdit.of("stage", "describe", ["1", "x"]))


def test_every_edit_leaves_a_buildable_outline_and_round_trips_stages():
    built = build_stages(BASE)
    assert drafts_of(built) == BASE
    for edit in (outline.OutlineEdit.of("step", "move", ["1.1", "2.2"]),
                 outline.OutlineEdit.of("stage", "move", ["2", "1"]),
                 outline.OutlineEdit.of("step", "command", ["1.2", "/echo x"])):
        assert len(build_stages(outline.apply(drafts_of(built), edit).stages)) == 2

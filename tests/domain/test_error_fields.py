"""Domain errors name the input they are about (``DomainError.field``), so forms need not read messages."""

from __future__ import annotations

import pytest

from domain import Conflict, ValidationError, limits, validation
from domain.playbooks import StageDraft, StepDraft, build_stages, edit_playbook, new_playbook
from domain.step_commands import check_stages


def test_field_defaults_to_none_and_the_message_is_unchanged():
    error = ValidationError("Something is wrong.")
    assert error.field is None and error.message == str(error) == "Something is wrong."
    assert Conflict("Taken.", field="title").field == "title"


@pytest.mark.parametrize("check, value, field", [
    (validation.incident_name, "x", "name"),
    (validation.incident_description, "x" * (limits.INCIDENT_DESCRIPTION_MAX + 1), "description"),
    (validation.playbook_title, "", "title"),
    (validation.playbook_description, "\x00", "description"),
    (validation.stage_title, "", "title"),
    (validation.step_title, "x" * (limits.STEP_TITLE_MAX + 1), "title"),
    (validation.step_command, "echo", "command"),
])
def test_each_check_names_its_field(check, value, field):
    with pytest.raises(ValidationError) as caught:
        check(value)
    assert caught.value.field == field


def test_playbook_errors_name_title_description_or_stages():
    def field_of(**kwargs) -> str | None:
        with pytest.raises(ValidationError) as caught:
            new_playbook(team_id="t", created_by="u", now=1, **{"title": "Ok", **kwargs})
        return caught.value.field

    assert field_of(title=" ") == "title"
    assert field_of(description="x" * (limits.PLAYBOOK_DESCRIPTION_MAX + 1)) == "description"
    # Errors about a stage or a step name the stage and step in the message, and the field "stages".
    assert field_of(stages=[StageDraft(title="")]) == "stages"
    assert field_of(stages=[StageDraft(title="S", steps=(StepDraft(title="a", command="nope"),))]) == "stages"
    assert field_of(stages=[StageDraft(title=f"S{i}") for i in range(limits.STAGES_MAX + 1)]) == "stages"
    playbook = new_playbook(team_id="t", title="Ok", created_by="u", now=1)
    with pytest.raises(ValidationError) as caught:
        edit_playbook(playbook, now=2, stages=[])
    assert caught.value.field == "stages" and "at least one stage" in caught.value.message


def test_a_located_error_keeps_its_words():
    with pytest.raises(ValidationError) as caught:
        build_stages([StageDraft(title="S", steps=(StepDraft(title=""),))])
    assert caught.value.message == "Stage 1, step 1: The step title must not be empty."


def test_a_step_that_runs_a_step_is_a_stages_error():
    with pytest.raises(ValidationError) as caught:
        check_stages([StageDraft(title="S", steps=(StepDraft(title="a", command="/incident run 1.1"),))], "incident")
    assert caught.value.field == "stages"

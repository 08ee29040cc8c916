"""Step commands read the way Mattermost reads them; a step's command never runs a step."""

from __future__ import annotations

import pytest

from domain import ValidationError
from domain.playbooks import StageDraft, StepDraft
from domain.step_commands import check_stages, is_own, parse, runs_a_step


def test_split_at_the_first_whitespace_with_the_trigger_lower_cased_as_execute_command_does():
    assert parse("/Incident  Stage next") == parse("/incident  Stage next")
    assert parse("/incident  Stage next").trigger == "incident"
    assert parse("/incident  Stage next").text == " Stage next"
    assert parse("/incident  Stage next").subcommand == "stage"
    assert parse("/echo").text == "" and parse("/echo").trigger == "echo"
    assert parse("/incident\u00a0run 1.1").trigger == "incident"  # Go's unicode.IsSpace counts U+00A0 too


@pytest.mark.parametrize("command", ["/incident run 1.1", "/INCIDENT RUN 2", "/incident\trun 1.1",
                                     "/incident\u00a0run 1.1", "/incident   run", "/Incident Run 1.1 extra"])
def test_every_spelling_of_a_step_run_is_seen(command):
    assert runs_a_step(command, "incident")


@pytest.mark.parametrize("command", ["/incident running", "/incident stage next", "/jenkins run deploy",
                                     "/incidents run 1.1", "incident run 1.1", "/echo /incident run 1.1", ""])
def test_other_commands_are_not_step_runs(command):
    assert not runs_a_step(command, "incident")


def test_the_configured_trigger_is_the_one_that_counts():
    assert runs_a_step("/oncall run 1.1", "oncall") and not runs_a_step("/incident run 1.1", "oncall")
    assert is_own("/OnCall help", "oncall") and not is_own("/oncall2 help", "oncall")


def test_check_stages_names_the_stage_and_step():
    stages = [StageDraft(title="One", steps=(StepDraft(title="a", command="/echo hi"),)),
              StageDraft(title="Two", steps=(StepDraft(title="b"), StepDraft(title="c", command="/incident run 1.1")))]
    with pytest.raises(ValidationError, match=r"^Stage 2, step 2: a step's command cannot run a step"):
        check_stages(stages, "incident")
    check_stages(stages[:1], "incident")

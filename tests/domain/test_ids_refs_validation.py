"""Ids, step references and input validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import limits, validation
from domain.errors import ValidationError
from domain.ids import ID_ALPHABET, is_valid_id, new_id
from domain.models import StepRef
from domain.refs import parse_stage_number, parse_step_ref


def test_new_ids_are_26_chars_of_the_mattermost_alphabet_and_unique():
    ids = {new_id() for _ in range(2000)}
    assert len(ids) == 2000
    for value in ids:
        assert len(value) == 26 and set(value) <= set(ID_ALPHABET) and is_valid_id(value)
    assert not is_valid_id("short") and not is_valid_id("A" * 26)


@pytest.mark.parametrize(
    ("text", "active", "expected"),
    [("2.3", 0, StepRef(1, 2)), ("3", 1, StepRef(1, 2)), (" 1.1 ", 5, StepRef(0, 0)), ("10", 0, StepRef(0, 9))],
)
def test_parse_step_ref(text, active, expected):
    assert parse_step_ref(text, active) == expected
    assert expected.label == f"{expected.stage + 1}.{expected.index + 1}"


@pytest.mark.parametrize("text", ["", "x", "1.", ".1", "1.2.3", "0", "0.1", "1.0", "-1", "1,2", "99999", "١"])
def test_parse_step_ref_rejects_with_help(text):
    with pytest.raises(ValidationError) as info:
        parse_step_ref(text, 0)
    assert "S.N" in info.value.message


@given(st.integers(1, 999), st.integers(1, 999), st.integers(0, 50))
def test_parse_step_ref_round_trips(stage, step, active):
    ref = parse_step_ref(f"{stage}.{step}", active)
    assert parse_step_ref(ref.label, active) == ref == StepRef(stage - 1, step - 1)


@given(st.text(max_size=12))
def test_parse_step_ref_never_crashes(text):
    try:
        ref = parse_step_ref(text, 0)
    except ValidationError:
        return
    assert ref.stage >= 0 and ref.index >= 0


def test_parse_stage_number():
    assert parse_stage_number("2", 3) == 1
    with pytest.raises(ValidationError, match="Stage 4 does not exist: type a number from 1 to 3"):
        parse_stage_number("4", 3)
    with pytest.raises(ValidationError, match="not a stage number"):
        parse_stage_number("two", 3)


def test_incident_name_limits():
    assert validation.incident_name("  DB down  ") == "DB down"
    assert validation.incident_name("ab") == "ab"
    assert validation.incident_name("x" * limits.INCIDENT_NAME_MAX) == "x" * 64
    with pytest.raises(ValidationError, match='2–64 characters long; "a" has 1'):
        validation.incident_name("a")
    with pytest.raises(ValidationError, match=r"has 65\. Shorten it"):
        validation.incident_name("x" * 65)
    with pytest.raises(ValidationError, match="single line"):
        validation.incident_name("two\nlines")


def test_text_limits_and_commands():
    assert validation.step_description("a\r\nb") == "a\nb"
    with pytest.raises(ValidationError, match="at most 4000"):
        validation.step_description("x" * 4001)
    with pytest.raises(ValidationError, match="control characters"):
        validation.incident_description("bell\x07")
    assert validation.step_command("") == ""
    assert validation.step_command(" /invite @bob ") == "/invite @bob"
    with pytest.raises(ValidationError, match="slash command"):
        validation.step_command("invite @bob")
    with pytest.raises(ValidationError, match="must not be empty"):
        validation.step_title("   ")

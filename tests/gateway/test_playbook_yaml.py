"""The playbook YAML format: parsing with line numbers, dumping, round trips, and fuzzed input."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import limits, playbooks, validation
from domain.errors import ValidationError
from domain.templates import TEMPLATES
from gateway import playbook_yaml as pyaml
from gateway.playbook_yaml import (
    PlaybookFormatError,
    PlaybookSpec,
    StageSpec,
    StepSpec,
    UserRef,
)

MAX_EXAMPLES = int(os.environ.get("CC_HYPOTHESIS_EXAMPLES", "150"))

EXAMPLE = """\
title: Service outage
description: |
  When a customer-facing service is down.
  Restore first, explain later.
public: false
members: [alice, "@Bob"]
stages:
  - title: Triage
    steps:
      - Acknowledge the page
      - title: Set the header
        command: /header Outage
        assignee: bob
        description: Keeps newcomers oriented.
  - title: Review
"""


def problems_of(text: str) -> list[tuple[int, str]]:
    with pytest.raises(PlaybookFormatError) as caught:
        pyaml.parse(text)
    return [(p.line, p.where) for p in caught.value.problems]


def test_parse_reads_every_field():
    spec = pyaml.parse(EXAMPLE)
    assert spec.title == "Service outage"
    assert spec.description == "When a customer-facing service is down.\nRestore first, explain later."
    assert spec.public is False
    assert [m.username for m in spec.members] == ["alice", "bob"]
    assert spec.members[1].line == 6
    triage, review = spec.stages
    assert triage.steps[0] == StepSpec(title="Acknowledge the page")
    assert triage.steps[1] == StepSpec(title="Set the header", description="Keeps newcomers oriented.",
                                       command="/header Outage", assignee=UserRef("bob"))
    assert triage.steps[1].assignee.line == 13 and "assignee" in triage.steps[1].assignee.where
    assert review == StageSpec(title="Review")
    assert [ref.username for ref in spec.usernames()] == ["alice", "bob", "bob"]


def test_defaults_public_true_and_no_members():
    spec = pyaml.parse("title: Small\nstages:\n  - title: Only\n    steps: [One, Two]\n")
    assert spec.public is True and spec.members == () and spec.description == ""
    assert [s.title for s in spec.stages[0].steps] == ["One", "Two"]


@pytest.mark.parametrize("text, expected", [
    ("", [(0, "")]),
    ("- a\n- b\n", [(1, "")]),
    ("title: x\n", [(1, "stages")]),
    ("title: x\nstages: []\n", [(2, "stages")]),
    ("title: ''\nstages: [{title: a}]\n", [(1, "title")]),
    ("title: x\npublic: maybe\nstages: [{title: a}]\n", [(2, "public")]),
    ("title: x\ncolour: red\nstages: [{title: a}]\n", [(2, "colour")]),
    ("title: x\ntitle: y\nstages: [{title: a}]\n", [(2, "title")]),
    ("title: x\nmembers: [alice, 'not a name!']\nstages: [{title: a}]\n", [(2, "members, entry 2")]),
    ("title: x\nstages:\n  - steps: [a]\n", [(3, "stage 1")]),
    ("title: x\nstages:\n  - title: A\n    steps:\n      - title: ok\n      - title: b\n        command: echo\n",
     [(7, "stage 1, step 2, command")]),
    ("title: x\nstages:\n  - title: A\n    steps:\n      - {title: b, due: tomorrow}\n",
     [(5, "stage 1, step 1, due")]),
    ("title: [\n", [(2, "")]),
    ("title: &a x\nstages: *a\n", [(2, "")]),
    ("title: !!binary aGk=\nstages: [{title: a}]\n", [(1, "title")]),
    ("title: x\nstages: [{title: a}]\n---\ntitle: y\n", [(3, "")]),
    ("title: x\x00\n", [(1, "")]),
])
def test_problems_name_the_line_and_field(text, expected):
    assert problems_of(text) == expected


def test_all_problems_are_reported_in_line_order_with_a_readable_message():
    text = "title: ''\npublic: 3\nstages:\n  - title: A\n    steps:\n      - title: ok\n        command: nope\n"
    with pytest.raises(PlaybookFormatError) as caught:
        pyaml.parse(text)
    error = caught.value
    assert [(p.line, p.where) for p in error.problems] == [(1, "title"), (2, "public"), (7, "stage 1, step 1, command")]
    assert isinstance(error, ValidationError)
    assert str(error).startswith("The playbook YAML has 3 problems; nothing was saved.")
    assert "- Line 7, stage 1, step 1, command: The step command must be a slash command" in str(error)


def test_limits_are_checked_with_the_line_of_the_list():
    stages = "\n".join(f"  - title: S{i}" for i in range(limits.STAGES_MAX + 1))
    assert problems_of(f"title: x\nstages:\n{stages}\n") == [(3, "stages")]
    steps = "\n".join(f"      - s{i}" for i in range(limits.STEPS_PER_STAGE_MAX + 1))
    assert problems_of(f"title: x\nstages:\n  - title: A\n    steps:\n{steps}\n") == [(5, "stage 1, steps")]


def test_dangerous_yaml_is_refused_cheaply():
    laughs = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\n"
    assert problems_of(laughs)[0][0] == 2
    assert problems_of("[" * 5000 + "]" * 5000) == [(1, "")]
    assert problems_of("title: !!python/object:os.system x\nstages: [{title: a}]\n") == [(1, "title")]
    huge = "title: x\ndescription: " + "a" * (pyaml.MAX_YAML_CHARS + 1)
    assert problems_of(huge) == [(0, "")]


def test_dump_is_readable_and_parses_back():
    spec = pyaml.parse(EXAMPLE)
    text = pyaml.dump(spec)
    assert text.startswith("# Command Center playbook")
    assert "description: |-\n  When a customer-facing service is down.\n  Restore first, explain later.\n" in text
    assert "  - Acknowledge the page\n" in text  # a title-only step is one line
    assert pyaml.parse(text) == spec


def test_stages_outline_round_trip_and_errors():
    spec = pyaml.parse(EXAMPLE)
    outline = pyaml.dump_stages(spec.stages)
    assert outline.startswith("- title: Triage\n")
    assert pyaml.parse_stages(outline) == spec.stages
    with pytest.raises(PlaybookFormatError) as caught:
        pyaml.parse_stages("- title: A\n  steps:\n    - title: ''\n")
    assert [(p.line, p.where) for p in caught.value.problems] == [(3, "stage 1, step 1, title")]
    with pytest.raises(PlaybookFormatError):
        pyaml.parse_stages("   \n")


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.key)
def test_templates_round_trip_through_a_stored_playbook(template):
    playbook = playbooks.new_playbook(team_id="t", title=template.title, created_by="u1", now=1,
                                      description=template.description, member_ids=["u2"],
                                      create_public_channel=template.create_public_channel, stages=template.stages)
    names = {"u1": "alice", "u2": "bob"}
    spec = pyaml.playbook_spec(playbook, names)
    assert [m.username for m in spec.members] == ["alice", "bob"]
    assert pyaml.parse(pyaml.dump(spec)) == spec


# -- properties -------------------------------------------------------------------------------

def _valid(check):
    def ok(value: str) -> bool:
        try:
            return check(value) == value
        except ValidationError:
            return False
    return ok


# Characters YAML treats specially (line separators, BOM, non-characters, NBSP) are drawn often on purpose.
_chars = st.one_of(st.characters(blacklist_categories=("Cc", "Cs")), st.sampled_from("\u2028\u2029\ufeff\ufffe\xa0"))
_line = st.text(_chars, min_size=1, max_size=40)
_text = st.text(st.one_of(_chars, st.sampled_from("\n\t  #:-'\"|>")), max_size=80)
usernames = st.from_regex(r"[a-z0-9._-]{1,20}", fullmatch=True)
commands = st.one_of(st.just(""), st.from_regex(r"/[a-z]{1,10}( [^\x00-\x1f\x7f-\x9f]{1,20})?", fullmatch=True)
                     .filter(_valid(validation.step_command)))
steps = st.builds(
    StepSpec,
    title=_line.filter(_valid(validation.step_title)),
    description=_text.filter(_valid(validation.step_description)),
    command=commands,
    assignee=st.one_of(st.none(), usernames.map(UserRef)),
)
stages = st.builds(StageSpec, title=_line.filter(_valid(validation.stage_title)),
                   steps=st.lists(steps, max_size=4).map(tuple))
specs = st.builds(
    PlaybookSpec,
    title=_line.filter(_valid(validation.playbook_title)),
    description=_text.filter(_valid(validation.playbook_description)),
    public=st.booleans(),
    members=st.lists(usernames, unique=True, max_size=4).map(lambda names: tuple(UserRef(n) for n in names)),
    stages=st.lists(stages, min_size=1, max_size=4).map(tuple),
)


@settings(max_examples=MAX_EXAMPLES, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(specs)
def test_any_valid_playbook_survives_dump_then_parse(spec):
    assert pyaml.parse(pyaml.dump(spec)) == spec
    assert pyaml.parse_stages(pyaml.dump_stages(spec.stages)) == spec.stages


def _mutate(text: str, edits: list[tuple[int, int, str]]) -> str:
    for kind, position, insert in edits:
        at = position % (len(text) + 1)
        if kind == 0:
            text = text[:at] + insert + text[at:]
        elif kind == 1:
            text = text[:at] + text[at + 1:]
        else:
            text = text[:at] + insert + text[at + 1:]
    return text


@settings(max_examples=MAX_EXAMPLES * 2, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(specs, st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10_000),
                                 st.sampled_from(["", ":", "-", " ", "  ", "\n", "\t", "[", "]", "{", "}", "&a", "*a",
                                                  "!!", "'", '"', "|", ">", "#", "\x00", "\ufeff", "---", "? ", "%"])),
                       min_size=1, max_size=6))
def test_fuzzed_yaml_either_parses_to_a_valid_playbook_or_is_refused_cleanly(spec, edits):
    text = _mutate(pyaml.dump(spec), edits)
    try:
        parsed = pyaml.parse(text)
    except PlaybookFormatError as error:
        assert error.problems and all(p.line >= 0 for p in error.problems)
        return
    # Whatever was accepted passes every domain limit.
    playbooks.new_playbook(team_id="t", title=parsed.title, created_by="u", now=1, description=parsed.description,
                           stages=[playbooks.StageDraft(title=s.title, steps=tuple(
                               playbooks.StepDraft(title=p.title, description=p.description, command=p.command)
                               for p in s.steps)) for s in parsed.stages])


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_the_parser(text):
    try:
        pyaml.parse(text)
    except PlaybookFormatError:
        pass


# -- the whole chain a stored playbook goes through: ids → usernames → YAML → usernames → ids --------

_people = {f"id{n:02d}": f"user{n}" for n in range(6)}
_people_ids = sorted(_people)

stored_steps = st.builds(
    playbooks.StepDraft,
    title=_line.filter(_valid(validation.step_title)),
    description=_text.filter(_valid(validation.step_description)),
    command=commands,
    assignee_id=st.one_of(st.none(), st.sampled_from(_people_ids)),
)
stored_stages = st.builds(playbooks.StageDraft, title=_line.filter(_valid(validation.stage_title)),
                          steps=st.lists(stored_steps, max_size=4).map(tuple))


def _content(playbook):
    return (playbook.title, playbook.description, playbook.create_public_channel, playbook.member_ids,
            [(s.title, [(x.title, x.description, x.command, x.assignee_id) for x in s.steps]) for s in playbook.stages])


@settings(max_examples=MAX_EXAMPLES, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(title=_line.filter(_valid(validation.playbook_title)),
       description=_text.filter(_valid(validation.playbook_description)),
       public=st.booleans(), members=st.lists(st.sampled_from(_people_ids), unique=True, max_size=5),
       stages=st.lists(stored_stages, min_size=1, max_size=4))
def test_any_stored_playbook_survives_export_then_import(title, description, public, members, stages):
    from services.playbooks import PlaybookService

    original = playbooks.new_playbook(team_id="t", title=title, created_by="id00", now=1, description=description,
                                      create_public_channel=public, member_ids=members, stages=stages)
    spec = pyaml.parse(pyaml.dump(pyaml.playbook_spec(original, _people)))
    ids = {name: user_id for user_id, name in _people.items()}
    imported = playbooks.new_playbook(team_id="t", title=spec.title, created_by="id00", now=2,
                                      description=spec.description, create_public_channel=spec.public,
                                      member_ids=[ids[m.username] for m in spec.members],
                                      stages=PlaybookService.drafts(spec.stages, ids))
    assert _content(imported) == _content(original)

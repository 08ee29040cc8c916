"""The built-in playbook templates are valid, distinct and realistic."""

from __future__ import annotations

import pytest

from domain import playbooks
from domain.templates import (
    BLANK,
    DEFAULT_TEMPLATE,
    INCIDENT_RESPONSE,
    TEMPLATES,
    find_template,
)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.key)
def test_every_template_makes_a_valid_playbook(template):
    playbook = playbooks.new_playbook(team_id="t", title=template.title, created_by="u", now=1,
                                      description=template.description,
                                      create_public_channel=template.create_public_channel, stages=template.stages)
    assert [stage.title for stage in playbook.stages] == [stage.title for stage in template.stages]
    assert playbook.step_count == template.step_count
    assert len(template.summary) <= 150


def test_keys_and_titles_are_unique_and_lookup_ignores_case():
    assert len({t.key for t in TEMPLATES}) == len({t.title.lower() for t in TEMPLATES}) == len(TEMPLATES) >= 4
    for template in TEMPLATES:
        assert find_template(template.key) is template
        assert find_template(f"  {template.title.upper()} ") is template
    assert find_template("no such template") is None


def test_blank_and_incident_response_are_what_the_spec_asks():
    assert BLANK.step_count == 0 and len(BLANK.stages) == 1
    assert [s.title for s in INCIDENT_RESPONSE.stages] == ["Triage", "Investigation", "Resolution"]
    assert all(len(stage.steps) >= 3 for stage in INCIDENT_RESPONSE.stages)
    assert any(step.command.startswith("/") for stage in INCIDENT_RESPONSE.stages for step in stage.steps)
    assert DEFAULT_TEMPLATE is INCIDENT_RESPONSE


def test_security_template_is_private_by_default():
    assert find_template("security-incident").create_public_channel is False

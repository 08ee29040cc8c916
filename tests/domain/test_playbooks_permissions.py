"""Playbook validation and membership; permission rules (SPEC section 6)."""

from __future__ import annotations

import pytest

from domain import limits, playbooks
from domain.errors import InvalidState, NotFound, PermissionDenied, ValidationError
from domain.models import Actor
from domain.permissions import (
    can_modify_incident,
    can_use_playbook,
    can_view_incident,
    require_modify_incident,
    require_use_playbook,
)

from .helpers import T0, incident, playbook


def test_new_playbook_defaults_and_creator_first_member():
    pb = playbooks.new_playbook(team_id="t", title=" Blank ", created_by="alice", now=T0, member_ids=["bob", "alice"])
    assert pb.title == "Blank" and pb.member_ids == ("alice", "bob")
    assert len(pb.stages) == 1 and pb.stages[0].title == playbooks.DEFAULT_STAGE_TITLE and pb.stages[0].steps == ()


def test_playbook_limits_name_the_stage_and_step():
    too_many_stages = [playbooks.StageDraft(title=f"S{i}") for i in range(limits.STAGES_MAX + 1)]
    with pytest.raises(ValidationError, match="at most 20 stages; this one has 21"):
        playbooks.new_playbook(team_id="t", title="x", created_by="a", now=T0, stages=too_many_stages)
    bad_step = [playbooks.StageDraft(title="A"), playbooks.StageDraft(title="B", steps=(playbooks.StepDraft(title="ok"), playbooks.StepDraft(title="x" * 300)))]
    with pytest.raises(ValidationError, match=r"^Stage 2, step 2: The step title must be 1–256"):
        playbooks.new_playbook(team_id="t", title="x", created_by="a", now=T0, stages=bad_step)
    with pytest.raises(ValidationError, match="Stage 1: The stage title must not be empty"):
        playbooks.new_playbook(team_id="t", title="x", created_by="a", now=T0, stages=[playbooks.StageDraft(title="")])
    with pytest.raises(ValidationError, match="playbook title"):
        playbooks.new_playbook(team_id="t", title="x" * 65, created_by="a", now=T0)
    many = [playbooks.StageDraft(title="A", steps=tuple(playbooks.StepDraft(title="s") for _ in range(51)))]
    with pytest.raises(ValidationError, match="51 steps; the maximum is 50"):
        playbooks.new_playbook(team_id="t", title="x", created_by="a", now=T0, stages=many)


def test_edit_and_members():
    pb = playbook()
    edited = playbooks.edit_playbook(pb, now=T0 + 5, title="New", create_public_channel=False)
    assert edited.title == "New" and not edited.create_public_channel and edited.updated_at == T0 + 5
    assert edited.stages == pb.stages and edited.version == pb.version
    shared = playbooks.add_members(pb, ["bob", "alice"], T0)
    assert shared.member_ids == ("alice", "bob")
    assert playbooks.add_members(shared, ["bob"], T0) is shared
    assert playbooks.remove_members(shared, ["alice"], T0).member_ids == ("bob",)
    with pytest.raises(InvalidState, match="at least one member"):
        playbooks.remove_members(pb, ["alice"], T0)
    assert playbooks.validate_playbook(pb) is pb


def test_incident_visibility():
    public, private = incident(public=True), incident(public=False)
    user, admin = Actor("bob"), Actor("root", is_system_admin=True)
    assert can_view_incident(user, public, is_team_member=True, is_channel_member=False)
    assert not can_view_incident(user, public, is_team_member=False, is_channel_member=False)
    assert not can_view_incident(user, private, is_team_member=True, is_channel_member=False)
    assert can_view_incident(user, private, is_team_member=True, is_channel_member=True)
    assert can_view_incident(admin, private, is_team_member=False, is_channel_member=False)
    with pytest.raises(NotFound, match="Incident not found"):
        require_modify_incident(user, private, is_team_member=True, is_channel_member=False)


def test_incident_modification_is_for_channel_members_only():
    inc = incident(public=True)
    assert can_modify_incident(Actor("bob"), inc, is_channel_member=True)
    assert not can_modify_incident(Actor("root", True), inc, is_channel_member=False)
    with pytest.raises(PermissionDenied, match="Only members of the incident channel"):
        require_modify_incident(Actor("bob"), inc, is_team_member=True, is_channel_member=False)
    require_modify_incident(Actor("bob"), inc, is_team_member=True, is_channel_member=True)


def test_playbook_use():
    pb = playbooks.add_members(playbook(), ["bob"], T0)
    assert can_use_playbook(Actor("bob"), pb, is_team_member=True)
    assert not can_use_playbook(Actor("bob"), pb, is_team_member=False)
    assert not can_use_playbook(Actor("carol"), pb, is_team_member=True)
    assert can_use_playbook(Actor("root", is_system_admin=True), pb, is_team_member=False)
    with pytest.raises(NotFound, match="Playbook not found"):
        require_use_playbook(Actor("carol"), pb, is_team_member=True)

"""Playbook update settings, durations and the permission rules of status updates (issue 17)."""

from __future__ import annotations

import pytest

from domain import limits, permissions, playbooks
from domain.durations import describe_duration, format_duration, parse_duration
from domain.errors import NotFound, PermissionDenied, ValidationError
from domain.models import Actor, ReminderDelivery, UpdateSettings
from domain.permissions import BroadcastRefusal, broadcast_refusal

from .helpers import T0, incident, playbook

MIN = 60_000


def test_update_settings_are_validated_and_normalised():
    settings = playbooks.update_settings(broadcast_channel_ids=["a", "b", "a", ""], interval_ms=15 * MIN,
                                         template="  **Impact**\r\n  ", reminder_delivery="channel")
    assert settings == UpdateSettings(broadcast_channel_ids=("a", "b"), interval_ms=15 * MIN, template="**Impact**",
                                      reminder_delivery=ReminderDelivery.CHANNEL)
    assert playbooks.update_settings() == UpdateSettings()


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"broadcast_channel_ids": [f"c{n}" for n in range(limits.BROADCAST_CHANNELS_MAX + 1)]}, "broadcast_channel_ids"),
    ({"interval_ms": 30_000}, "interval"),
    ({"interval_ms": 90_000}, "interval"),
    ({"interval_ms": limits.UPDATE_INTERVAL_MAX_MS + MIN}, "interval"),
    ({"template": "x" * (limits.UPDATE_TEMPLATE_MAX + 1)}, "template"),
    ({"reminder_delivery": "pager"}, "reminder_delivery"),
])
def test_update_settings_refuse_what_breaks_a_limit(kwargs, field):
    with pytest.raises(ValidationError) as raised:
        playbooks.update_settings(**kwargs)
    assert raised.value.field == field


def test_start_settings_on_new_and_edited_playbooks():
    pb = playbooks.new_playbook(team_id="t", title="P", created_by="alice", now=T0,
                                updates=UpdateSettings(interval_ms=MIN), invited_user_ids=["bob", "bob"],
                                default_commander_id="bob", auto_follower_ids=["dave"])
    assert (pb.invited_user_ids, pb.default_commander_id, pb.auto_follower_ids) == (("bob",), "bob", ("dave",))
    assert pb.updates.interval_ms == MIN
    untouched = playbooks.edit_playbook(pb, now=T0 + 1, title="Q")
    assert (untouched.updates, untouched.invited_user_ids, untouched.default_commander_id) == (
        pb.updates, pb.invited_user_ids, "bob")
    assert playbooks.validate_playbook(pb) is pb
    with pytest.raises(ValidationError) as raised:
        playbooks.edit_playbook(pb, now=T0, invited_user_ids=[f"u{n}" for n in range(limits.PLAYBOOK_INVITED_MAX + 1)])
    assert raised.value.field == "invited_user_ids"
    with pytest.raises(ValidationError) as raised:
        playbooks.new_playbook(team_id="t", title="P", created_by="alice", now=T0,
                               auto_follower_ids=[f"u{n}" for n in range(limits.PLAYBOOK_FOLLOWERS_MAX + 1)])
    assert raised.value.field == "auto_follower_ids"
    with pytest.raises(ValidationError):
        playbooks.validate_playbook(pb.model_copy(update={"updates": UpdateSettings(interval_ms=1)}))


@pytest.mark.parametrize(("text", "ms"), [
    ("15m", 15 * MIN), ("30 min", 30 * MIN), ("1h", 60 * MIN), ("4h", 240 * MIN), ("1h30m", 90 * MIN),
    ("90", 90 * MIN), ("2d", 2880 * MIN), ("1 hour 5 minutes", 65 * MIN), ("none", None), ("OFF", None),
])
def test_durations_people_type(text, ms):
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "soon", "1x", "1h1h", "h", "5m garbage", "-5m", "1.5h"])
def test_what_is_not_a_duration(text):
    with pytest.raises(ValidationError, match="not a duration"):
        parse_duration(text, field="f")


@pytest.mark.parametrize("ms", [None, MIN, 15 * MIN, 60 * MIN, 90 * MIN, 1441 * MIN, 7 * 1440 * MIN])
def test_the_canonical_form_reads_back(ms):
    assert parse_duration(format_duration(ms)) == ms


def test_durations_in_words():
    assert [describe_duration(ms) for ms in (15 * MIN, 90 * MIN, 1440 * MIN, None)] == [
        "15 min", "1 h 30 min", "1 d", "no next update"]


ALICE, BOB, ZED = Actor("alice"), Actor("bob"), Actor("zed")
ADMIN = Actor("root", is_system_admin=True)


def test_any_channel_member_may_post_an_update_but_not_a_follower_outside():
    inc = incident()
    permissions.require_post_update(BOB, inc, is_team_member=True, is_channel_member=True)
    with pytest.raises(PermissionDenied, match="follow the incident"):
        permissions.require_post_update(ZED, inc, is_team_member=True, is_channel_member=False)
    with pytest.raises(PermissionDenied):
        permissions.require_post_update(ADMIN, inc, is_team_member=True, is_channel_member=False)
    private = inc.model_copy(update={"public": False})
    with pytest.raises(NotFound):
        permissions.require_post_update(ZED, private, is_team_member=True, is_channel_member=False)


def test_request_update_is_for_channel_members():
    inc = incident()
    permissions.require_request_update(BOB, inc, is_team_member=True, is_channel_member=True)
    with pytest.raises(PermissionDenied):
        permissions.require_request_update(ZED, inc, is_team_member=True, is_channel_member=False)


def test_only_the_commander_snoozes():
    inc = incident()
    permissions.require_snooze_reminder(ALICE, inc, is_team_member=True, is_channel_member=True)
    with pytest.raises(PermissionDenied, match="Only the commander"):
        permissions.require_snooze_reminder(BOB, inc, is_team_member=True, is_channel_member=True)
    assert not permissions.can_snooze_reminder(ALICE, inc, is_channel_member=False)


def test_whoever_can_see_an_incident_may_follow_it():
    public = incident()
    private = public.model_copy(update={"public": False})
    for inc in (public, private):
        for actor, team, channel in ((ZED, True, False), (ZED, False, False), (ADMIN, False, False),
                                     (BOB, True, True)):
            assert permissions.can_follow_incident(actor, inc, is_team_member=team, is_channel_member=channel) == (
                permissions.can_view_incident(actor, inc, is_team_member=team, is_channel_member=channel))
    permissions.require_follow_incident(ZED, public, is_team_member=True, is_channel_member=False)
    with pytest.raises(NotFound):
        permissions.require_follow_incident(ZED, private, is_team_member=True, is_channel_member=False)


def refusal(**overrides):
    facts = dict(found=True, same_team=True, team_channel=True, archived=False, public=True, bot_is_member=True,
                 user_is_member=True, user_can_post=True)
    facts.update(overrides)
    return broadcast_refusal(**facts)


def test_broadcast_channels_where_the_user_can_post():
    assert refusal() is None
    assert refusal(user_is_member=None, user_can_post=None) is None  # not known yet
    assert refusal(public=False, bot_is_member=True) is None


@pytest.mark.parametrize(("overrides", "why"), [
    ({"found": False}, BroadcastRefusal.UNSEEN),
    ({"same_team": False}, BroadcastRefusal.UNSEEN),
    ({"public": False, "bot_is_member": False}, BroadcastRefusal.UNSEEN),
    ({"public": False, "user_is_member": False}, BroadcastRefusal.UNSEEN),
    ({"team_channel": False}, BroadcastRefusal.NOT_A_TEAM_CHANNEL),
    ({"user_is_member": False}, BroadcastRefusal.NOT_A_MEMBER),
    ({"archived": True}, BroadcastRefusal.ARCHIVED),
    ({"user_can_post": False}, BroadcastRefusal.CANNOT_POST),
])
def test_broadcast_refusals(overrides, why):
    assert refusal(**overrides) is why


def test_settings_need_a_playbook_member_to_change_them():
    pb = playbook()
    assert permissions.can_use_playbook(ALICE, pb, is_team_member=True)
    assert not permissions.can_use_playbook(ZED, pb, is_team_member=True)

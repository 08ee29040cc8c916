"""The playbook YAML's status-update and start settings (issue 17): read with line numbers,
written only when set, and a stored playbook survives export then import with all of them."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import limits, playbooks
from domain.models import ReminderDelivery, UpdateSettings
from gateway import playbook_yaml as pyaml
from gateway.playbook_yaml import ChannelRef, PlaybookFormatError, UserRef

MAX_EXAMPLES = int(os.environ.get("CC_HYPOTHESIS_EXAMPLES", "150"))
MIN = 60_000

EXAMPLE = """\
title: Service outage
members: [alice]
broadcast_channels: [ops-status, "~Exec-Briefing"]
update_interval: 1h30m
update_template: |
  **Impact:**
  **Next steps:**
reminders: dm
invite: [bob, "@Carol"]
commander: bob
followers: [dave]
stages:
  - title: Triage
"""


def problems_of(text):
    with pytest.raises(PlaybookFormatError) as caught:
        pyaml.parse(text)
    return [(p.line, p.where, p.message) for p in caught.value.problems]


def test_parse_reads_every_setting():
    spec = pyaml.parse(EXAMPLE)
    assert spec.broadcast_channels == (ChannelRef("ops-status"), ChannelRef("exec-briefing"))
    assert spec.broadcast_channels[1].line == 3
    assert spec.update_interval_ms == 90 * MIN
    assert spec.update_template == "**Impact:**\n**Next steps:**"
    assert spec.reminders is ReminderDelivery.DM
    assert spec.invite == (UserRef("bob"), UserRef("carol"))
    assert spec.commander == UserRef("bob") and spec.commander.line == 10
    assert spec.followers == (UserRef("dave"),)
    assert [r.username for r in spec.usernames()] == ["alice", "bob", "carol", "bob", "dave"]
    assert [(r.line, r.where) for r in spec.usernames()[1:]] == [
        (9, "invite, entry 1"), (9, "invite, entry 2"), (10, "commander"), (11, "followers, entry 1")]
    assert [c.name for c in spec.channel_names()] == ["ops-status", "exec-briefing"]


def test_a_file_without_the_settings_gets_the_defaults_and_dumps_as_before():
    text = "title: P\nstages:\n  - title: One\n"
    spec = pyaml.parse(text)
    assert (spec.broadcast_channels, spec.update_interval_ms, spec.update_template, spec.reminders, spec.invite,
            spec.commander, spec.followers) == ((), None, "", ReminderDelivery.BOTH, (), None, ())
    dumped = pyaml.dump(spec)
    for name in ("broadcast_channels", "update_interval", "update_template", "reminders", "invite", "commander",
                 "followers"):
        assert name not in dumped
    nulls = pyaml.parse("title: P\nupdate_interval: none\ncommander:\ninvite:\nbroadcast_channels:\n"
                        "stages:\n  - title: One\n")
    assert nulls == spec


@pytest.mark.parametrize(("line", "expected"), [
    ("update_interval: soon", (2, "update_interval", "is not a duration")),
    ("update_interval: 30s", (2, "update_interval", "is not a duration")),
    ("update_interval: 8d", (2, "update_interval", "from 1 minute to 7 days")),
    ("reminders: pager", (2, "reminders", "channel, dm, both")),
    ("commander: not a name!", (2, "commander", "is not a username")),
    ("commander: [bob]", (2, "commander", "expected text")),
    ("broadcast_channels: [Town Square]", (2, "broadcast_channels, entry 1", "is not a channel name")),
    ("broadcast_channels: ops", (2, "broadcast_channels", "expected a list")),
    ("invite: [ok, 'b@d']", (2, "invite, entry 2", "is not a username")),
    ("followers: {a: b}", (2, "followers", "expected a list")),
    ("update_template: [a]", (2, "update_template", "expected text")),
])
def test_problems_name_the_line_and_field(line, expected):
    found = problems_of(f"title: P\n{line}\nstages:\n  - title: One\n")
    assert len(found) == 1
    (at, where, message), (want_line, want_where, want_text) = found[0], expected
    assert (at, where) == (want_line, want_where) and want_text in message, found


def test_limits_of_the_lists_and_the_template():
    many = ", ".join(f"c{n}" for n in range(limits.BROADCAST_CHANNELS_MAX + 1))
    assert problems_of(f"title: P\nbroadcast_channels: [{many}]\nstages:\n  - title: One\n")[0][:2] == (
        2, "broadcast_channels")
    people = ", ".join(f"u{n}" for n in range(limits.PLAYBOOK_FOLLOWERS_MAX + 1))
    assert problems_of(f"title: P\nfollowers: [{people}]\nstages:\n  - title: One\n")[0][:2] == (2, "followers")
    long = "x" * (limits.UPDATE_TEMPLATE_MAX + 1)
    assert problems_of(f"title: P\nupdate_template: {long}\nstages:\n  - title: One\n")[0][:2] == (
        2, "update_template")


def test_every_problem_is_reported_at_once():
    found = problems_of("title: P\nupdate_interval: x\nreminders: y\ncommander: '!'\nstages:\n  - title: One\n")
    assert [(line, where) for line, where, _ in found] == [(2, "update_interval"), (3, "reminders"),
                                                            (4, "commander")]


def test_duplicates_are_dropped_in_file_order():
    spec = pyaml.parse("title: P\nbroadcast_channels: [a1, '~A1', b2]\nfollowers: [x, X, y]\n"
                       "stages:\n  - title: One\n")
    assert [c.name for c in spec.broadcast_channels] == ["a1", "b2"]
    assert [u.username for u in spec.followers] == ["x", "y"]


_people = {f"id{n:02d}": f"user{n}" for n in range(8)}
_channels = {f"ch{n:02d}": f"channel-{n}" for n in range(12)}


def _settings_of(playbook):
    return (playbook.updates, playbook.invited_user_ids, playbook.default_commander_id, playbook.auto_follower_ids,
            playbook.member_ids, playbook.title)


def _import(spec, created_by="id00"):
    user_ids = {name: user_id for user_id, name in _people.items()}
    channel_ids = {name: channel_id for channel_id, name in _channels.items()}
    return playbooks.new_playbook(team_id="t", title=spec.title, created_by=created_by, now=2,
                                  member_ids=[user_ids[m.username] for m in spec.members],
                                  **pyaml.playbook_settings(spec, user_ids, channel_ids))


def test_a_configured_playbook_survives_export_then_import():
    original = playbooks.new_playbook(
        team_id="t", title="Outage", created_by="id00", now=1,
        updates=playbooks.update_settings(broadcast_channel_ids=["ch03", "ch01"], interval_ms=4 * 60 * MIN,
                                          template="Impact:\nNext:", reminder_delivery="channel"),
        invited_user_ids=["id02", "id03"], default_commander_id="id02", auto_follower_ids=["id05"])
    text = pyaml.dump(pyaml.playbook_spec(original, _people, _channels))
    assert "update_interval: 4h\n" in text and "broadcast_channels:\n- channel-3\n- channel-1\n" in text
    assert _settings_of(_import(pyaml.parse(text))) == _settings_of(original)


def test_users_and_channels_that_no_longer_exist_are_left_out_of_an_export():
    original = playbooks.new_playbook(
        team_id="t", title="Outage", created_by="id00", now=1,
        updates=UpdateSettings(broadcast_channel_ids=("ch01", "gone")), invited_user_ids=["id01", "nobody"],
        default_commander_id="nobody", auto_follower_ids=["nobody"])
    spec = pyaml.playbook_spec(original, _people, _channels)
    assert spec.broadcast_channels == (ChannelRef("channel-1"),) and spec.invite == (UserRef("user1"),)
    assert spec.commander is None and spec.followers == ()
    assert pyaml.playbook_spec(original, _people).broadcast_channels == ()  # no channel names given


_ids = st.lists(st.sampled_from(sorted(_people)), unique=True, max_size=4)
_intervals = st.one_of(st.none(), st.integers(1, limits.UPDATE_INTERVAL_MAX_MS // MIN).map(lambda m: m * MIN))
_template = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\u2028\u2029\ufeff\ufffe"
                                  "\x85\xa0"), max_size=60).map(str.strip)


@settings(max_examples=MAX_EXAMPLES, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(channels=st.lists(st.sampled_from(sorted(_channels)), unique=True, max_size=limits.BROADCAST_CHANNELS_MAX),
       interval=_intervals, template=_template, delivery=st.sampled_from(list(ReminderDelivery)),
       invited=_ids, commander=st.one_of(st.none(), st.sampled_from(sorted(_people))), followers=_ids)
def test_any_settings_survive_export_then_import(channels, interval, template, delivery, invited, commander,
                                                 followers):
    original = playbooks.new_playbook(
        team_id="t", title="Outage", created_by="id00", now=1,
        updates=playbooks.update_settings(broadcast_channel_ids=channels, interval_ms=interval, template=template,
                                          reminder_delivery=delivery),
        invited_user_ids=invited, default_commander_id=commander, auto_follower_ids=followers)
    spec = pyaml.playbook_spec(original, _people, _channels)
    assert pyaml.parse(pyaml.dump(spec)) == spec
    assert _settings_of(_import(pyaml.parse(pyaml.dump(spec)))) == _settings_of(original)

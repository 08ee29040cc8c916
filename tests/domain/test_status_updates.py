"""Status updates, reminders and followers as pure operations (domain/updates.py, issue 17)."""

from __future__ import annotations

import pytest

from domain import incidents, limits, playbooks, updates
from domain.errors import InvalidState, ValidationError
from domain.freshness import StaleCard
from domain.models import EventKind, ReminderDelivery

from .helpers import T0, playbook

MIN = 60_000
HOUR = 60 * MIN


def started(interval_ms=None, followers=(), commander_id=None, **settings):
    pb = playbook()
    pb = playbooks.edit_playbook(pb, now=T0, updates=playbooks.update_settings(interval_ms=interval_ms, **settings),
                                 auto_follower_ids=followers)
    inc, events = incidents.start_incident(pb, name="Database down", channel_id="chan1", creator_id="alice", now=T0,
                                           commander_id=commander_id)
    return inc, events


def test_a_start_copies_the_update_settings_and_followers_and_sets_the_first_due_time():
    inc, events = started(30 * MIN, followers=("dave", "dave", "erin"), broadcast_channel_ids=["bc1"],
                          template="Impact:", reminder_delivery="dm")
    assert inc.updates.broadcast_channel_ids == ("bc1",) and inc.updates.template == "Impact:"
    assert inc.updates.reminder_delivery is ReminderDelivery.DM
    assert inc.follower_ids == ("dave", "erin")
    assert inc.next_update_due_at == T0 + 30 * MIN
    assert inc.last_update_at is None
    assert events[0].details == {"playbook_id": inc.playbook_id, "source_post_id": None}


def test_without_an_interval_nothing_is_due_and_the_start_is_as_before():
    inc, _ = started()
    assert inc.next_update_due_at is None and inc.follower_ids == () and inc.commander_id == "alice"
    assert not updates.overdue(inc, T0 + 10**9)


def test_a_default_commander_commands_and_the_creation_says_so():
    inc, events = started(commander_id="bob")
    assert (inc.commander_id, inc.creator_id) == ("bob", "alice")
    assert events[0].details["commander_id"] == "bob"


def test_start_commander_falls_back_to_the_creator():
    pb = playbooks.edit_playbook(playbook(), now=T0, default_commander_id="bob")
    assert playbooks.start_commander(pb, "alice", default_commander_available=True) == "bob"
    assert playbooks.start_commander(pb, "alice", default_commander_available=False) == "alice"
    cleared = playbooks.edit_playbook(pb, now=T0, default_commander_id="")
    assert cleared.default_commander_id is None
    assert playbooks.start_commander(cleared, "alice", default_commander_available=True) == "alice"


def test_post_update_sets_the_last_update_and_the_next_due_time():
    inc, _ = started(30 * MIN)
    updated, events = updates.post_update(inc, "  DB failover done.\r\nWatching.  ", "bob", T0 + 5 * MIN,
                                          next_in_ms=HOUR)
    assert (updated.last_update_at, updated.last_update_by) == (T0 + 5 * MIN, "bob")
    assert updated.next_update_due_at == T0 + 5 * MIN + HOUR
    [event] = events
    assert event.kind is EventKind.STATUS_UPDATE and event.actor_id == "bob"
    assert event.details == {"message": "DB failover done.\nWatching.", "next_update_due_at": T0 + 65 * MIN,
                             "final": False}


def test_next_in_none_clears_the_due_time():
    inc, _ = started(30 * MIN)
    updated, events = updates.post_update(inc, "Stable", "alice", T0 + MIN, next_in_ms=None)
    assert updated.next_update_due_at is None and events[0].details["next_update_due_at"] is None
    assert not updates.overdue(updated, T0 + 10 * HOUR)


@pytest.mark.parametrize("text", ["", "   \n ", "x" * (limits.UPDATE_TEXT_MAX + 1), "bell\x07"])
def test_an_update_text_must_be_some_text_within_the_limit(text):
    inc, _ = started()
    with pytest.raises(ValidationError) as raised:
        updates.post_update(inc, text, "alice", T0, next_in_ms=None)
    assert raised.value.field == "text"


def test_the_longest_update_fits_one_mattermost_post_with_room_for_the_header():
    inc, _ = started()
    updated, _ = updates.post_update(inc, "é" * limits.UPDATE_TEXT_MAX, "alice", T0, next_in_ms=None)
    assert updated.last_update_at == T0
    assert limits.POST_MESSAGE_MAX - limits.UPDATE_TEXT_MAX >= 300


def test_no_update_on_an_ended_incident():
    inc, _ = started()
    ended, _ = incidents.end_incident(inc, "alice", T0 + MIN)
    with pytest.raises(InvalidState):
        updates.post_update(ended, "late news", "alice", T0 + 2 * MIN, next_in_ms=None)


def test_next_update_choices_put_the_playbook_default_first():
    inc, _ = started(HOUR)
    choices = updates.next_update_choices(inc)
    assert [c.value for c in choices] == ["default", "15m", "30m", "4h", "none"]  # 1h is the default
    assert choices[0].label == "Playbook default (1 h)" and choices[0].interval_ms == HOUR
    assert choices[-1].interval_ms is None
    plain, _ = started()
    assert [c.value for c in updates.next_update_choices(plain)] == ["15m", "30m", "1h", "4h", "none"]


def test_next_update_in_reads_every_choice_and_refuses_the_rest():
    inc, _ = started(2 * HOUR)
    for choice in updates.next_update_choices(inc):
        assert updates.next_update_in(inc, choice.value) == choice.interval_ms
    assert updates.next_update_in(inc, "") == 2 * HOUR
    assert updates.next_update_in(inc, "1h30m") == 90 * MIN
    for bad in ("soon", "0m", "8d", "-5m"):
        with pytest.raises(ValidationError) as raised:
            updates.next_update_in(inc, bad)
        assert raised.value.field in ("next_in", "interval")


def test_overdue_from_the_due_moment_while_ongoing():
    inc, _ = started(30 * MIN)
    assert not updates.overdue(inc, T0 + 30 * MIN - 1)
    assert updates.overdue(inc, T0 + 30 * MIN)
    ended, _ = incidents.end_incident(inc, "alice", T0 + HOUR)
    assert ended.next_update_due_at is None and not updates.overdue(ended, T0 + 2 * HOUR)


def test_snooze_moves_the_due_time_fifteen_minutes_from_now():
    inc, _ = started(30 * MIN)
    snoozed, events = updates.snooze_reminder(inc, "alice", T0 + 31 * MIN, drawn_for=inc.next_update_due_at)
    assert snoozed.next_update_due_at == T0 + 31 * MIN + limits.SNOOZE_MS
    assert not updates.overdue(snoozed, T0 + 40 * MIN)
    assert events[0].kind is EventKind.REMINDER_SNOOZED
    assert events[0].details == {"previous_due_at": T0 + 30 * MIN, "next_update_due_at": T0 + 46 * MIN}


def test_an_old_reminder_cannot_snooze_and_nothing_due_cannot_be_snoozed():
    inc, _ = started(30 * MIN)
    drawn_for = inc.next_update_due_at
    posted, _ = updates.post_update(inc, "news", "alice", T0 + 31 * MIN, next_in_ms=HOUR)
    with pytest.raises(StaleCard):
        updates.snooze_reminder(posted, "alice", T0 + 32 * MIN, drawn_for=drawn_for)
    calm, _ = updates.post_update(inc, "news", "alice", T0 + 31 * MIN, next_in_ms=None)
    with pytest.raises(InvalidState, match="nothing to snooze"):
        updates.snooze_reminder(calm, "alice", T0 + 32 * MIN)


def test_request_update_is_recorded_once_per_cooldown_and_cleared_by_an_update():
    inc, _ = started()
    requested, events = updates.request_update(inc, "bob", T0 + MIN)
    assert requested.update_requested_at == T0 + MIN
    assert events[0].kind is EventKind.UPDATE_REQUESTED and events[0].details == {"commander_id": "alice"}
    with pytest.raises(InvalidState, match="already requested"):
        updates.request_update(requested, "carol", T0 + 3 * MIN)
    again, _ = updates.request_update(requested, "carol", T0 + MIN + limits.REQUEST_UPDATE_COOLDOWN_MS)
    assert again.update_requested_at == T0 + MIN + limits.REQUEST_UPDATE_COOLDOWN_MS
    posted, _ = updates.post_update(requested, "news", "alice", T0 + 2 * MIN, next_in_ms=None)
    assert posted.update_requested_at is None
    assert updates.request_update(posted, "carol", T0 + 3 * MIN)[0].update_requested_at == T0 + 3 * MIN


def test_the_commander_does_not_request_from_themselves():
    inc, _ = started()
    with pytest.raises(ValidationError, match="You are the commander"):
        updates.request_update(inc, "alice", T0)


def test_follow_and_unfollow_are_idempotent():
    inc, _ = started()
    followed, events = updates.follow(inc, "zed", T0 + 1)
    assert followed.follower_ids == ("zed",) and [e.kind for e in events] == [EventKind.FOLLOWED]
    assert updates.follow(followed, "zed", T0 + 2) == (followed, [])
    gone, events = updates.unfollow(followed, "zed", T0 + 3)
    assert gone.follower_ids == () and [e.kind for e in events] == [EventKind.UNFOLLOWED]
    assert updates.unfollow(gone, "zed", T0 + 4) == (gone, [])


def test_an_ended_incident_can_be_followed_and_followers_are_limited():
    inc, _ = started()
    ended, _ = incidents.end_incident(inc, "alice", T0 + 1)
    assert updates.follow(ended, "zed", T0 + 2)[0].follower_ids == ("zed",)
    full = inc.model_copy(update={"follower_ids": tuple(f"u{n}" for n in range(limits.INCIDENT_FOLLOWERS_MAX))})
    with pytest.raises(InvalidState, match="followers"):
        updates.follow(full, "one-more", T0)
    assert updates.follow(full, "u0", T0) == (full, [])


def test_end_with_a_final_update_records_it_before_the_end():
    inc, _ = started(30 * MIN)
    requested, _ = updates.request_update(inc, "bob", T0 + MIN)
    ended, events = incidents.end_incident(requested, "alice", T0 + HOUR, final_update="Resolved: failover.")
    assert [e.kind for e in events] == [EventKind.STATUS_UPDATE, EventKind.ENDED]
    assert events[0].details == {"message": "Resolved: failover.", "next_update_due_at": None, "final": True}
    assert (ended.last_update_at, ended.last_update_by) == (T0 + HOUR, "alice")
    assert ended.next_update_due_at is None and ended.update_requested_at is None
    plain, events = incidents.end_incident(inc, "alice", T0 + HOUR)
    assert [e.kind for e in events] == [EventKind.ENDED] and plain.last_update_at is None
    with pytest.raises(ValidationError):
        incidents.end_incident(inc, "alice", T0 + HOUR, final_update="x" * (limits.UPDATE_TEXT_MAX + 1))


def test_a_restart_makes_the_next_update_due_one_interval_later():
    inc, _ = started(30 * MIN)
    ended, _ = incidents.end_incident(inc, "alice", T0 + HOUR)
    restarted, _ = incidents.restart_incident(ended, "alice", T0 + 2 * HOUR)
    assert restarted.next_update_due_at == T0 + 2 * HOUR + 30 * MIN
    plain, _ = started()
    ended, _ = incidents.end_incident(plain, "alice", T0 + HOUR)
    assert incidents.restart_incident(ended, "alice", T0 + 2 * HOUR)[0].next_update_due_at is None


def test_the_update_post_is_remembered_without_an_event():
    inc, _ = started()
    posted, _ = updates.post_update(inc, "news", "alice", T0, next_in_ms=None)
    assert updates.set_update_post(posted, "post1").last_update_post_id == "post1"
    again, _ = updates.post_update(updates.set_update_post(posted, "post1"), "more", "alice", T0 + 1, next_in_ms=None)
    assert again.last_update_post_id is None  # the new update's post is not known yet

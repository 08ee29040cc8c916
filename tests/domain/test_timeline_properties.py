"""Property tests of the timeline fold (domain/timeline.py, issue 18): for random event sequences —
posts pinned, unpinned, re-pinned, edited, deleted, events hidden, at random times and ties — what
people see equals a straightforward reference computation, its order is stable (the same on every
computation, and never changed by events appended later), and the pages cover it exactly once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from domain._ops import event
from domain.models import EventKind, TimelineEvent
from domain.timeline import BOOKKEEPING, entries, membership_needed, page_of
from tests.domain.helpers import T0, incident

INCIDENT = incident()
POSTS = ("p1", "p2", "p3")

step = st.tuples(
    st.sampled_from(["check", "add", "remove", "edit", "delete", "hide", "join", "leave"]),
    st.sampled_from(POSTS),
    st.integers(min_value=-5, max_value=30),  # minutes from the start: ties and posts from before it
    st.integers(min_value=0, max_value=10),  # which earlier event to hide
)


def build(steps) -> list[TimelineEvent]:
    events: list[TimelineEvent] = []
    for verb, post, minute, target in steps:
        at = T0 + minute * 60_000
        if verb == "check":
            events.append(event(INCIDENT, EventKind.STEP_CHECKED, "alice", at, stage=0, index=0, title="t"))
        elif verb == "add":
            events.append(event(INCIDENT, EventKind.POST_ADDED, "bob", at, post_id=post, excerpt=f"{post} v0"))
        elif verb == "remove":
            events.append(event(INCIDENT, EventKind.POST_REMOVED, "bob", at, post_id=post))
        elif verb == "edit":
            events.append(event(INCIDENT, EventKind.POST_EDITED, "bob", at, post_id=post, excerpt=f"{post} v{minute}"))
        elif verb == "delete":
            events.append(event(INCIDENT, EventKind.POST_DELETED, "bob", at, post_id=post))
        elif verb == "join":
            events.append(event(INCIDENT, EventKind.MEMBER_JOINED, "carol", at, user_id="carol"))
        elif verb == "leave":
            events.append(event(INCIDENT, EventKind.MEMBER_LEFT, "carol", at, user_id="carol"))
        elif events:
            chosen = events[target % len(events)]
            events.append(event(INCIDENT, EventKind.EVENT_HIDDEN, "alice", at, event_id=chosen.id))
    return events


def reference(events: list[TimelineEvent], include_hidden: bool = False) -> list[tuple[int, str, str, bool, bool]]:
    """(number, event id, text, deleted, hidden) of each line, computed the plain way."""
    rows = []
    for number, item in enumerate(events, start=1):
        if item.kind in BOOKKEEPING:
            continue
        hidden = any(e.kind is EventKind.EVENT_HIDDEN and e.details["event_id"] == item.id for e in events)
        if hidden and not include_hidden:
            continue
        text, deleted = "", False
        if item.kind is EventKind.POST_ADDED:
            post = item.details["post_id"]
            later = events[number:]
            # Removed when a removal of its post comes after it and before the post is added again.
            removed = False
            for e in later:
                if e.details.get("post_id") != post:
                    continue
                if e.kind is EventKind.POST_ADDED:
                    break
                if e.kind is EventKind.POST_REMOVED:
                    removed = True
                    break
            if removed:
                continue
            edits = [e for e in events if e.kind is EventKind.POST_EDITED and e.details["post_id"] == post]
            text = edits[-1].details["excerpt"] if edits else item.details["excerpt"]
            deleted = any(e.kind is EventKind.POST_DELETED and e.details["post_id"] == post for e in events)
        rows.append((item.at, number, item.id, text, deleted, hidden))
    rows.sort()
    return [(number, event_id, text, deleted, hidden) for _, number, event_id, text, deleted, hidden in rows]


def seen(events: list[TimelineEvent], include_hidden: bool = False) -> list[tuple[int, str, str, bool, bool]]:
    return [(e.number, e.event.id, str(e.event.details.get("excerpt", "")) if e.event.kind is EventKind.POST_ADDED
             else "", bool(e.event.details.get("deleted")), e.hidden) for e in entries(events, include_hidden=include_hidden)]


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=40), st.booleans())
def test_the_fold_equals_the_reference(steps, include_hidden):
    events = build(steps)
    assert seen(events, include_hidden) == reference(events, include_hidden)


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=40), st.lists(step, max_size=10))
def test_the_order_is_stable_on_every_computation_and_under_later_events(steps, more):
    events = build(steps)
    first = [e.event.id for e in entries(events)]
    assert [e.event.id for e in entries(list(events))] == first
    # Appending events never reorders the lines that are still shown.
    grown = events + build(more)
    still = [e.event.id for e in entries(grown) if e.event.id in set(first)]
    assert still == [event_id for event_id in first if event_id in set(still)]
    shown = entries(grown)
    assert [(e.event.at, e.number) for e in shown] == sorted((e.event.at, e.number) for e in shown)


@settings(max_examples=200, deadline=None)
@given(st.lists(step, max_size=60), st.integers(min_value=1, max_value=7))
def test_pages_cover_the_timeline_exactly_once(steps, per_page):
    shown = entries(build(steps))
    _, pages = page_of(shown, 0, per_page)
    collected = []
    for page in range(pages):
        items, total_pages = page_of(shown, page, per_page)
        assert total_pages == pages and (items or not shown)
        collected.extend(items)
    assert collected == shown


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=100)), max_size=12))
def test_replaying_a_membership_history_in_order_after_it_was_seen_live_adds_nothing(changes):
    """The live events, then the catch-up's replay of the same changes (stamped a little earlier,
    oldest first): every change is recorded exactly once."""
    recorded: list[TimelineEvent] = []
    state = None
    moments = []
    at = T0
    for joined, gap in changes:
        at += (gap + 11) * 1000  # real changes of one person are more than SAME_CHANGE_MS apart
        kind = EventKind.MEMBER_JOINED if joined else EventKind.MEMBER_LEFT
        if kind is state:
            continue  # Mattermost sends no second join to someone already in
        state = kind
        moments.append((kind, at))
        if membership_needed(recorded, kind, at, replayed=False):
            recorded.append(event(INCIDENT, kind, "carol", at, user_id="carol"))
    assert len(recorded) == len(moments)
    for kind, at in moments:
        if membership_needed(recorded, kind, at - 3, replayed=True):
            recorded.append(event(INCIDENT, kind, "carol", at - 3, user_id="carol"))
    assert len(recorded) == len(moments)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=100)), max_size=12),
       st.integers(min_value=0, max_value=12))
def test_changes_missed_during_an_outage_are_recorded_once_by_the_replay(changes, seen_live):
    recorded: list[TimelineEvent] = []
    state = None
    moments = []
    at = T0
    for joined, gap in changes:
        at += (gap + 11) * 1000
        kind = EventKind.MEMBER_JOINED if joined else EventKind.MEMBER_LEFT
        if kind is not state:
            state = kind
            moments.append((kind, at))
    for kind, at in moments[:seen_live]:  # seen live before the connection was lost
        if membership_needed(recorded, kind, at, replayed=False):
            recorded.append(event(INCIDENT, kind, "carol", at, user_id="carol"))
    for kind, at in moments:  # the catch-up replays from before the loss (the overlap), in order
        if membership_needed(recorded, kind, at - 3, replayed=True):
            recorded.append(event(INCIDENT, kind, "carol", at - 3, user_id="carol"))
    assert [e.kind for e in sorted(recorded, key=lambda e: e.at)] == [kind for kind, _ in moments]

"""The timeline as people see it, folded from the append-only events (issue 18).

Events are never changed or deleted. What people see is computed from all of them:

* every event has a stable **number**: its 1-based position in the order the incident's events
  were recorded (which never changes, events being append-only); ``timeline hide N`` uses it;
* a post added to the timeline (``POST_ADDED``) shows the text of its latest ``POST_EDITED``, is
  marked deleted after a ``POST_DELETED``, and is left out after a ``POST_REMOVED`` (its reaction
  was taken away) — adding it again makes a new entry;
* an event named by an ``EVENT_HIDDEN`` is left out (the commander may still list it with ``--all``);
* the bookkeeping kinds themselves (removed, edited, deleted, hidden) are never shown as lines;
* entries are ordered by their time (a post's own time, which may be before the moment it was
  added), ties by number — so the order is the same however often it is computed.

The rules that decide whether a new event is needed (a second pin of a post already on the
timeline, a membership event already recorded) are here too, so the service only fetches facts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._ops import event
from .errors import COMMAND, InvalidState, NotFound, PermissionDenied
from .models import EventKind, Incident, TimelineEvent

#: The details key naming what an event is about, per kind (the store indexes it: ``subject_of``).
_SUBJECT_KEYS: dict[EventKind, str] = {
    EventKind.POST_ADDED: "post_id",
    EventKind.POST_REMOVED: "post_id",
    EventKind.POST_EDITED: "post_id",
    EventKind.POST_DELETED: "post_id",
    EventKind.MEMBER_JOINED: "user_id",
    EventKind.MEMBER_LEFT: "user_id",
    EventKind.EVENT_HIDDEN: "event_id",
}

#: Kinds that change other entries and are never lines of their own.
BOOKKEEPING = frozenset({EventKind.POST_REMOVED, EventKind.POST_EDITED, EventKind.POST_DELETED,
                         EventKind.EVENT_HIDDEN})
_POST_KINDS = (EventKind.POST_ADDED, EventKind.POST_REMOVED)
_MEMBER_KINDS = (EventKind.MEMBER_JOINED, EventKind.MEMBER_LEFT)


def subject_of(item: TimelineEvent) -> str | None:
    """The post, user or event this event is about (None for the kinds that are about the incident)."""
    key = _SUBJECT_KEYS.get(item.kind)
    value = item.details.get(key) if key else None
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the timeline: the event as it stands now (a post's latest text, deleted or not),
    its stable number, and who hid it (only listed with ``include_hidden``)."""

    number: int
    event: TimelineEvent
    hidden_by: str | None = None

    @property
    def hidden(self) -> bool:
        return self.hidden_by is not None


def entries(events: Sequence[TimelineEvent], *, include_hidden: bool = False) -> list[Entry]:
    """The incident's timeline from its events in recorded order (see the module text)."""
    hidden: dict[str, str] = {}
    removed: set[str] = set()  # POST_ADDED event ids whose post was taken off the timeline
    current: dict[str, str] = {}  # post id -> the POST_ADDED event id on the timeline now
    latest: dict[str, dict] = {}  # post id -> details its latest edit/delete changes
    for item in events:
        post_id = subject_of(item)
        if item.kind is EventKind.EVENT_HIDDEN and post_id:
            hidden.setdefault(post_id, item.actor_id)
        elif item.kind is EventKind.POST_ADDED and post_id:
            current[post_id] = item.id
        elif item.kind is EventKind.POST_REMOVED and post_id:
            if post_id in current:
                removed.add(current.pop(post_id))
        elif item.kind is EventKind.POST_EDITED and post_id:
            latest.setdefault(post_id, {})["excerpt"] = str(item.details.get("excerpt", ""))
        elif item.kind is EventKind.POST_DELETED and post_id:
            latest.setdefault(post_id, {})["deleted"] = True
    shown: list[Entry] = []
    for number, item in enumerate(events, start=1):
        if item.kind in BOOKKEEPING or item.id in removed:
            continue
        hider = hidden.get(item.id)
        if hider is not None and not include_hidden:
            continue
        if item.kind is EventKind.POST_ADDED:
            change = latest.get(subject_of(item) or "")
            if change:
                item = item.model_copy(update={"details": {**item.details, **change}})
        shown.append(Entry(number, item, hider))
    shown.sort(key=lambda entry: (entry.event.at, entry.number))
    return shown


def page_of(shown: Sequence[Entry], page: int, per_page: int) -> tuple[list[Entry], int]:
    """Page ``page`` (from 0) of the entries, and how many pages there are (at least 1)."""
    pages = max(1, -(-len(shown) // per_page))
    if page >= pages:
        raise NotFound(f"The timeline has {pages} page{'s' if pages != 1 else ''}: choose a page from 1 to {pages}.")
    return list(shown[page * per_page:(page + 1) * per_page]), pages


def post_on_timeline(about_post: Sequence[TimelineEvent]) -> TimelineEvent | None:
    """The ``POST_ADDED`` event that has this post on the timeline now (None: it is not on it),
    given the post's events in recorded order."""
    on: TimelineEvent | None = None
    for item in about_post:
        if item.kind is EventKind.POST_ADDED:
            on = item
        elif item.kind is EventKind.POST_REMOVED:
            on = None
    return on


def post_deleted(about_post: Sequence[TimelineEvent]) -> bool:
    """Whether a deletion of this post is recorded."""
    return any(item.kind is EventKind.POST_DELETED for item in about_post)


def post_excerpt(about_post: Sequence[TimelineEvent]) -> str | None:
    """The text last recorded for this post (its latest edit, else the text it was added with)."""
    text: str | None = None
    for item in about_post:
        if item.kind in (EventKind.POST_ADDED, EventKind.POST_EDITED):
            text = str(item.details.get("excerpt", ""))
    return text


#: A join or leave seen live and the same one replayed by the catch-up (stamped with its system
#: post's time) are at most this far apart; two real changes of one person that close are not told apart.
SAME_CHANGE_MS = 10_000


def membership_needed(about_user: Sequence[TimelineEvent], kind: EventKind, at: int, *, replayed: bool) -> bool:
    """Whether a join (or leave) of one user at ``at`` is news, given their events in recorded order.

    Live (``replayed`` False): when the latest recorded one is not of that kind. Replayed by the
    catch-up after an outage (the events of a channel come in order): unless the same change was
    recorded within ``SAME_CHANGE_MS`` (it was seen live, or replayed already), or the user was
    already in that state at ``at``. So nothing is lost or recorded twice.
    """
    known = [item for item in about_user if item.kind in _MEMBER_KINDS]
    if not replayed:
        return not known or known[-1].kind is not kind
    if any(item.kind is kind and abs(item.at - at) <= SAME_CHANGE_MS for item in known):
        return False
    before = [item for item in known if item.at <= at]
    return not before or max(before, key=lambda item: item.at).kind is not kind


def joined_at_start(incident: Incident, user_ids: Sequence[str], creator_id: str, now: int) -> list[TimelineEvent]:
    """The joins of the people a start put in the new channel (its creator, the commander, the
    playbook's invited users), recorded with the incident: Mattermost's ``user_added`` for them
    arrives before the incident is stored, and any that arrives after is then not news."""
    return [event(incident, EventKind.MEMBER_JOINED, creator_id, now, user_id=user_id)
            for user_id in dict.fromkeys(user_ids)]


def hide(incident: Incident, events: Sequence[TimelineEvent], number: int, actor: str, now: int,
         *, is_admin: bool = False) -> TimelineEvent:
    """The ``EVENT_HIDDEN`` event hiding event number ``number`` (as listed); only the commander
    (or a system admin) may hide, and only a line that is shown."""
    if actor != incident.commander_id and not is_admin:
        raise PermissionDenied("Only the commander can hide timeline events.")
    if not 1 <= number <= len(events):
        raise NotFound(f"There is no event #{number} in this timeline. Type {COMMAND}timeline to see the numbers.")
    target = events[number - 1]
    if target.kind in BOOKKEEPING:
        raise NotFound(f"There is no event #{number} in this timeline. Type {COMMAND}timeline to see the numbers.")
    if any(item.kind is EventKind.EVENT_HIDDEN and subject_of(item) == target.id for item in events):
        raise InvalidState(f"Event #{number} is already hidden.")
    return event(incident, EventKind.EVENT_HIDDEN, actor, now, event_id=target.id, number=number)


def hidden_ids(events: Sequence[TimelineEvent]) -> set[str]:
    """The ids of the events hidden by an ``EVENT_HIDDEN`` event (what only ``--all`` lists)."""
    return {subject for item in events if item.kind is EventKind.EVENT_HIDDEN
            and (subject := subject_of(item)) is not None}


def recorded_order(events: Sequence[TimelineEvent]) -> dict[str, int]:
    """Each event's stable number."""
    return {item.id: number for number, item in enumerate(events, start=1)}


__all__ = [
    "BOOKKEEPING",
    "SAME_CHANGE_MS",
    "Entry",
    "entries",
    "hidden_ids",
    "hide",
    "joined_at_start",
    "membership_needed",
    "page_of",
    "post_deleted",
    "post_excerpt",
    "post_on_timeline",
    "recorded_order",
    "subject_of",
]

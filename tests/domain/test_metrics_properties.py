"""Property tests: metrics computed from random event sequences equal a straightforward reference.

The reference below is written separately from domain/metrics.py and the other way round: it
first cuts the history into explicit segments (ongoing periods; stage periods inside them), then
sums their lengths, where the domain folds event by event into a small state. Sequences are any
order of kinds, including impossible ones (an end while ended, a restart while ongoing, a stage
change while ended, malformed details) and times that go backwards. Also: folding the events in
any number of chunks (what the store does, one write at a time) gives the same summary as folding
them at once, and nearest-rank percentiles equal a counting definition.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.metrics import MetricsRow, advance, aggregate, incident_metrics, percentile, start_summary, summarize
from domain.models import EventKind, Incident, Stage, TimelineEvent

from .helpers import T0

MAX_EXAMPLES = int(os.environ.get("CC_HYPOTHESIS_EXAMPLES", "200"))

KINDS = [EventKind.STAGE_CHANGED, EventKind.ENDED, EventKind.RESTARTED, EventKind.STATUS_UPDATE,
         EventKind.STEP_CHECKED, EventKind.STEP_UNCHECKED, EventKind.STEP_REMOVED, EventKind.STEP_ASSIGNED,
         EventKind.COMMANDER_CHANGED, EventKind.FOLLOWED, EventKind.FIELD_CHANGED]
STAGES = 4
STEP_IDS = ["s1", "s2", "s3"]
ACTORS = ["alice", "bob"]


@st.composite
def event_sequences(draw) -> list[TimelineEvent]:
    count = draw(st.integers(0, 40))
    monotonic = draw(st.booleans())
    at = T0
    events = []
    for n in range(count):
        kind = draw(st.sampled_from(KINDS))
        at = at + draw(st.integers(0, 10**7)) if monotonic else T0 + draw(st.integers(-10**6, 10**8))
        details: dict = {}
        if kind is EventKind.STAGE_CHANGED:
            details = {"stage": draw(st.one_of(st.integers(0, STAGES - 1), st.just("1"), st.just(-3)))}
        elif kind in (EventKind.STEP_CHECKED, EventKind.STEP_UNCHECKED, EventKind.STEP_REMOVED, EventKind.STEP_ASSIGNED):
            details = {"step_id": draw(st.sampled_from(STEP_IDS))}
        events.append(TimelineEvent(id=f"e{n}", incident_id="inc", at=at, kind=kind,
                                    actor_id=draw(st.sampled_from(ACTORS)), details=details))
    return events


def the_incident() -> Incident:
    return Incident(id="inc", team_id="t", channel_id="c", name="x", commander_id="alice", creator_id="alice",
                    stages=tuple(Stage(id=f"st{n}", title=f"S{n}") for n in range(STAGES)), created_at=T0)


@dataclass
class Reference:
    first_update_ms: int | None
    resolve_ms: int | None
    ongoing_ms: int
    stage_ms: list[int]
    restarts: int
    steps_done: int
    done_by: dict[str, int]


def reference(events: list[TimelineEvent], now: int) -> Reference:
    # 1. Ongoing periods: (start, end or None). Only an end while ongoing closes one, only a
    #    restart while ended opens one.
    periods: list[list] = [[T0, None]]
    for e in events:
        open_now = periods[-1][1] is None
        if e.kind is EventKind.ENDED and open_now:
            periods[-1][1] = e.at
        elif e.kind is EventKind.RESTARTED and not open_now:
            periods.append([e.at, None])
    ended = periods[-1][1] is not None
    # 2. Stage segments: (stage, start, end or None), cut by every valid stage change inside a
    #    period; a change while ended only decides the stage the next period starts in.
    segments: list[list] = []
    stage = 0
    in_period = True
    segments.append([0, T0, None])
    for e in events:
        if e.kind is EventKind.STAGE_CHANGED:
            value = e.details.get("stage")
            if not (isinstance(value, int) and 0 <= value):
                continue
            if in_period:
                segments[-1][2] = e.at
                segments.append([value, e.at, None])
            stage = value
        elif e.kind is EventKind.ENDED and in_period:
            segments[-1][2] = e.at
            in_period = False
        elif e.kind is EventKind.RESTARTED and not in_period:
            segments.append([stage, e.at, None])
            in_period = True

    def length(start: int, end: int | None) -> int:
        return max(0, (now if end is None else end) - start)

    stage_ms = [0] * STAGES
    for s, start, end in segments:
        stage_ms[s] += length(start, end)
    updates = [e.at for e in events if e.kind is EventKind.STATUS_UPDATE]
    # 3. Steps: replay each step's state.
    state: dict[str, str | None] = {}
    for e in events:
        if e.kind is EventKind.STEP_CHECKED:
            state[e.details["step_id"]] = e.actor_id
        elif e.kind in (EventKind.STEP_UNCHECKED, EventKind.STEP_REMOVED):
            state[e.details["step_id"]] = None
    checkers = [who for who in state.values() if who is not None]
    return Reference(
        first_update_ms=max(0, min(updates) - T0) if updates else None,
        resolve_ms=max(0, periods[-1][1] - T0) if ended else None,
        ongoing_ms=sum(length(start, end) for start, end in periods),
        stage_ms=stage_ms,
        restarts=len(periods) - 1,
        steps_done=len(checkers),
        done_by={who: checkers.count(who) for who in sorted(set(checkers))},
    )


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(events=event_sequences(), later=st.integers(0, 10**9))
def test_metrics_equal_the_reference(events, later):
    now = max([T0, *(e.at for e in events)]) + later
    got = incident_metrics(the_incident(), events, now)
    want = reference(events, now)
    assert got.time_to_first_update_ms == want.first_update_ms
    assert got.time_to_resolve_ms == want.resolve_ms
    assert got.ongoing_ms == want.ongoing_ms
    assert list(got.stage_ms) == want.stage_ms
    assert got.restarts == want.restarts
    assert got.steps_done == want.steps_done and got.done_by == want.done_by
    times = [T0, *(e.at for e in events)]
    if all(a <= b for a, b in itertools.pairwise(times)):
        assert sum(got.stage_ms) == got.ongoing_ms  # in order, every ongoing moment is in one stage


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(events=event_sequences(), cuts=st.lists(st.integers(0, 40), max_size=6))
def test_folding_in_chunks_equals_folding_at_once(events, cuts):
    summary = start_summary(T0)
    bounds = sorted({0, len(events), *(c for c in cuts if c <= len(events))})
    for start, end in itertools.pairwise(bounds):
        summary = advance(summary, events[start:end])
    assert summary == summarize(T0, events)


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(values=st.lists(st.integers(0, 10**6), max_size=60), p=st.integers(1, 100))
def test_nearest_rank_percentile_equals_the_counting_definition(values, p):
    # The smallest value v such that at least p % of the values are <= v.
    expected = next((v for v in sorted(values) if 100 * sum(1 for x in values if x <= v) >= p * len(values)), None)
    assert percentile(values, p) == expected


@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(["pb1", "pb2", None]), st.sampled_from(["SEV1", "SEV2", None]),
                               st.one_of(st.none(), st.integers(0, 10**7))), max_size=50))
def test_aggregate_equals_filtering_by_hand(rows):
    built = [MetricsRow(incident_id=f"i{n}", team_id="t", playbook_id=pb, channel_id="c", public=True,
                        severity=sev, created_at=T0, resolve_ms=resolve) for n, (pb, sev, resolve) in enumerate(rows)]
    stats = aggregate(built)
    for playbook in {pb for pb, _, _ in rows}:
        for severity in {sev for pb, sev, _ in rows if pb == playbook}:
            times = sorted(r for pb, sev, r in rows if pb == playbook and sev == severity and r is not None)
            figures = stats.by_playbook[playbook].by_severity[severity]
            assert figures.count == sum(1 for pb, sev, _ in rows if pb == playbook and sev == severity)
            assert figures.resolved == len(times)
            assert figures.median_ms == (times[(len(times) + 1) // 2 - 1] if times else None)
    assert stats.total.total.count == len(rows)

"""Exact metrics of incidents, computed from their timeline events (issue 18; docs/metrics.md).

Everything here is pure: an incident's figures are a fold over its events in the order they were
recorded, starting from the incident's start (``Incident.created_at``). The fold's state is a
:class:`MetricsSummary`, small and independent of how many events there were; the store keeps one
per incident, advanced in the same transaction as every event it records (``advance``), so figures
over thousands of incidents never read their events again. ``summarize`` computes it from scratch;
the two always agree (tests/domain/test_metrics_properties.py).

Definitions (docs/metrics.md says them in words):

- **ongoing intervals**: from the start to the first ``ENDED``, and from each ``RESTARTED`` to the
  next ``ENDED``. An ``ENDED`` while ended and a ``RESTARTED`` while ongoing change nothing.
- **time to resolve**: from the start to the *last* end, for an incident that is ended now
  (None while ongoing, restarted ones included); **time ongoing**: the sum of the ongoing intervals
  (the open one counted up to ``now``).
- **time to first status update**: from the start to the earliest ``STATUS_UPDATE`` (None: none).
- **time in each stage**: ongoing time only, split by the active stage (stage 0 at the start, then
  what each ``STAGE_CHANGED`` set); ended time counts for no stage.
- **steps done**: the steps whose last check or uncheck was a check and that were not removed
  since, each credited to whoever checked it last.

An interval whose end is recorded before its start (clocks of several processes) counts 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from .models import EventKind, Incident, TimelineEvent

__all__ = [
    "WEEK_MS",
    "Figures",
    "IncidentMetrics",
    "MetricsRow",
    "MetricsSummary",
    "PlaybookStats",
    "Stats",
    "Week",
    "advance",
    "aggregate",
    "by_week",
    "incident_metrics",
    "percentile",
    "start_summary",
    "summarize",
    "week_start",
]

class MetricsSummary(BaseModel):
    """The state of the fold over an incident's events: enough for every per-incident figure.

    ``stage_ms[i]`` is the closed ongoing time spent in stage ``i``; ``ongoing_since`` and
    ``stage_since`` start the open intervals (None while ended). ``events`` counts the events folded.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    created_at: int
    ongoing: bool = True
    ongoing_ms: int = 0
    ongoing_since: int | None = None
    last_ended_at: int | None = None
    first_update_at: int | None = None
    stage: int = 0
    stage_since: int | None = None
    stage_ms: tuple[int, ...] = ()
    restarts: int = 0
    events: int = 0

    @property
    def resolve_ms(self) -> int | None:
        """Start → last end, for an incident ended now; None while it is ongoing."""
        if self.ongoing or self.last_ended_at is None:
            return None
        return max(0, self.last_ended_at - self.created_at)

    @property
    def first_update_ms(self) -> int | None:
        """Start → earliest status update; None when there was none."""
        return None if self.first_update_at is None else max(0, self.first_update_at - self.created_at)

    def ongoing_ms_at(self, now: int) -> int:
        """Total ongoing time, the open interval counted up to ``now``."""
        if self.ongoing and self.ongoing_since is not None:
            return self.ongoing_ms + max(0, now - self.ongoing_since)
        return self.ongoing_ms

    def stage_ms_at(self, now: int) -> tuple[int, ...]:
        """Ongoing time per stage index, the active stage's open interval counted up to ``now``."""
        times = list(self.stage_ms)
        if self.ongoing and self.stage_since is not None:
            times = _grown(times, self.stage)
            times[self.stage] += max(0, now - self.stage_since)
        return tuple(times)


def _grown(times: list[int], index: int) -> list[int]:
    if index >= len(times):
        times = times + [0] * (index + 1 - len(times))
    return times


def start_summary(created_at: int) -> MetricsSummary:
    """The summary of an incident that has just started and recorded nothing yet."""
    return MetricsSummary(created_at=created_at, ongoing_since=created_at, stage_since=created_at)


def _stage_of(event: TimelineEvent) -> int | None:
    stage = event.details.get("stage")
    return stage if isinstance(stage, int) and not isinstance(stage, bool) and 0 <= stage < 10_000 else None


def advance(summary: MetricsSummary, events: Iterable[TimelineEvent]) -> MetricsSummary:
    """``summary`` with ``events`` (recorded after what it has seen, in their order) folded in."""
    state = summary.model_dump()
    stage_ms = list(summary.stage_ms)
    count = 0
    for event in events:
        count += 1
        at = event.at
        kind = event.kind
        if kind is EventKind.STATUS_UPDATE:
            first = state["first_update_at"]
            state["first_update_at"] = at if first is None else min(first, at)
        elif kind is EventKind.STAGE_CHANGED:
            stage = _stage_of(event)
            if stage is None:
                continue
            if state["ongoing"]:
                stage_ms = _grown(stage_ms, state["stage"])
                stage_ms[state["stage"]] += max(0, at - state["stage_since"])
                state["stage_since"] = at
            state["stage"] = stage
        elif kind is EventKind.ENDED and state["ongoing"]:
            state["ongoing_ms"] += max(0, at - state["ongoing_since"])
            stage_ms = _grown(stage_ms, state["stage"])
            stage_ms[state["stage"]] += max(0, at - state["stage_since"])
            state.update(ongoing=False, ongoing_since=None, stage_since=None, last_ended_at=at)
        elif kind is EventKind.RESTARTED and not state["ongoing"]:
            state.update(ongoing=True, ongoing_since=at, stage_since=at, restarts=state["restarts"] + 1)
    if not count:
        return summary
    state["stage_ms"] = tuple(stage_ms)
    state["events"] = summary.events + count
    return MetricsSummary(**state)


def summarize(created_at: int, events: Iterable[TimelineEvent]) -> MetricsSummary:
    """The summary of an incident started at ``created_at`` with these events (in recorded order)."""
    return advance(start_summary(created_at), events)


@dataclass(frozen=True)
class IncidentMetrics:
    """One incident's figures at a moment (``now``), all in milliseconds."""

    time_to_first_update_ms: int | None
    time_to_resolve_ms: int | None
    ongoing_ms: int
    stage_ms: tuple[int, ...]
    restarts: int
    steps_done: int
    #: User id → how many of the done steps they checked (the last check of each).
    done_by: dict[str, int] = field(default_factory=dict)


def incident_metrics(incident: Incident, events: Sequence[TimelineEvent], now: int) -> IncidentMetrics:
    """Every per-incident figure of ``incident`` from its timeline ``events`` (recorded order)."""
    summary = summarize(incident.created_at, events)
    done: dict[str, str] = {}  # step id -> who checked it last, for the steps done now
    for event in events:
        step_id = event.details.get("step_id")
        if not isinstance(step_id, str):
            continue
        if event.kind is EventKind.STEP_CHECKED:
            done[step_id] = event.actor_id
        elif event.kind in (EventKind.STEP_UNCHECKED, EventKind.STEP_REMOVED):
            done.pop(step_id, None)
    done_by: dict[str, int] = {}
    for actor in done.values():
        done_by[actor] = done_by.get(actor, 0) + 1
    stage_ms = summary.stage_ms_at(now)
    stage_ms = stage_ms + (0,) * (len(incident.stages) - len(stage_ms))
    return IncidentMetrics(
        time_to_first_update_ms=summary.first_update_ms,
        time_to_resolve_ms=summary.resolve_ms,
        ongoing_ms=summary.ongoing_ms_at(now),
        stage_ms=stage_ms,
        restarts=summary.restarts,
        steps_done=len(done),
        done_by=dict(sorted(done_by.items())),
    )


# -- over many incidents --------------------------------------------------------------------------------


class MetricsRow(NamedTuple):
    """What stats need of one incident: where it belongs, who may see it, and its summary's figures
    (a tuple: stats build one per incident of the period)."""

    incident_id: str
    team_id: str
    playbook_id: str | None
    channel_id: str
    public: bool
    severity: str | None
    created_at: int
    #: Start → last end while ended (``MetricsSummary.resolve_ms``); None while ongoing.
    resolve_ms: int | None


def percentile(values: Sequence[int], p: int) -> int | None:
    """The nearest-rank ``p``-th percentile (1 ≤ p ≤ 100) of ``values``: the smallest value that at
    least ``p`` % of them do not exceed. The median is ``percentile(values, 50)`` (the lower middle
    of an even count). None for no values."""
    return _nearest_rank(sorted(values), p)


def _nearest_rank(ordered: Sequence[int], p: int) -> int | None:
    if not 1 <= p <= 100:
        raise ValueError("a percentile is between 1 and 100")
    if not ordered:
        return None
    return ordered[max(1, math.ceil(p * len(ordered) / 100)) - 1]


@dataclass(frozen=True)
class Figures:
    """Count of incidents and, over the resolved ones, median and p90 time to resolve."""

    count: int
    resolved: int
    median_ms: int | None
    p90_ms: int | None

    @classmethod
    def of(cls, rows: Sequence[MetricsRow]) -> Figures:
        return cls.of_times(len(rows), [row.resolve_ms for row in rows if row.resolve_ms is not None])

    @classmethod
    def of_times(cls, count: int, times: list[int]) -> Figures:
        """The figures of ``count`` incidents whose resolved ones took ``times``."""
        ordered = sorted(times)
        return cls(count, len(ordered), _nearest_rank(ordered, 50), _nearest_rank(ordered, 90))


@dataclass(frozen=True)
class PlaybookStats:
    """One playbook's figures (or every playbook's), in all and per severity (None: not set)."""

    total: Figures
    by_severity: dict[str | None, Figures]


@dataclass(frozen=True)
class Stats:
    """Figures of every incident counted, and per playbook id (None: started without a playbook)."""

    total: PlaybookStats
    by_playbook: dict[str | None, PlaybookStats]


def aggregate(rows: Sequence[MetricsRow]) -> Stats:
    """Group ``rows`` by playbook, then by severity, with the figures of each group.

    One pass puts every row in its (playbook, severity) cell; the playbooks' and the totals' figures
    are made from the cells."""
    cells: dict[tuple[str | None, str | None], tuple[list[int], list[int]]] = {}  # -> ([count], times)
    for row in rows:
        cell = cells.get((row.playbook_id, row.severity))
        if cell is None:
            cell = cells[(row.playbook_id, row.severity)] = ([0], [])
        cell[0][0] += 1
        if row.resolve_ms is not None:
            cell[1].append(row.resolve_ms)
    playbooks: dict[str | None, dict[str | None, tuple[int, list[int]]]] = {}
    severities: dict[str | None, tuple[list[int], list[int]]] = {}
    for (playbook, severity), (count, times) in cells.items():
        playbooks.setdefault(playbook, {})[severity] = (count[0], times)
        every = severities.setdefault(severity, ([0], []))
        every[0][0] += count[0]
        every[1].extend(times)

    def stats_of(groups: dict[str | None, tuple[int, list[int]]]) -> PlaybookStats:
        count = sum(n for n, _ in groups.values())
        times = [t for _, group_times in groups.values() for t in group_times]
        return PlaybookStats(Figures.of_times(count, times),
                             {severity: Figures.of_times(n, group_times) for severity, (n, group_times) in groups.items()})

    total = stats_of({severity: (count[0], times) for severity, (count, times) in severities.items()})
    return Stats(total, {playbook: stats_of(groups) for playbook, groups in playbooks.items()})


#: A week, in milliseconds; weeks start on Monday 00:00 UTC (1970-01-05 was a Monday).
WEEK_MS = 7 * 86_400_000
_FIRST_MONDAY_MS = 4 * 86_400_000


def week_start(at_ms: int) -> int:
    """The start (Monday 00:00 UTC, epoch ms) of the week ``at_ms`` is in."""
    return (at_ms - _FIRST_MONDAY_MS) // WEEK_MS * WEEK_MS + _FIRST_MONDAY_MS


@dataclass(frozen=True)
class Week:
    """The figures of the incidents started in one week (``start``: its Monday 00:00 UTC)."""

    start: int
    figures: Figures


def by_week(rows: Sequence[MetricsRow], *, since: int, until: int) -> tuple[Week, ...]:
    """Every week from the one ``since`` is in to the one ``until`` is in (empty weeks included, so
    a chart's axis is even), each with the figures of the rows started in it."""
    if until < since:
        return ()
    first, last = week_start(since), week_start(until)
    counts: dict[int, int] = {}
    times: dict[int, list[int]] = {}
    for row in rows:
        start = week_start(row.created_at)
        counts[start] = counts.get(start, 0) + 1
        if row.resolve_ms is not None:
            times.setdefault(start, []).append(row.resolve_ms)
    return tuple(Week(start, Figures.of_times(counts.get(start, 0), times.get(start, [])))
                 for start in range(first, last + 1, WEEK_MS))

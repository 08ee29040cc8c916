"""Per-incident metrics from the events of real domain operations, and the figures over many
incidents (domain/metrics.py; the definitions are in docs/metrics.md)."""

from __future__ import annotations

import pytest

from domain import checklist, incidents, metrics, updates
from domain.metrics import Figures, MetricsRow, aggregate, incident_metrics, percentile, summarize
from domain.models import EventKind, TimelineEvent

from .helpers import T0, incident

MIN = 60_000


class Recorder:
    """Applies domain operations to one incident and keeps every event, as the store would."""

    def __init__(self) -> None:
        self.incident = incident(stages=3, steps=2)
        self.events: list[TimelineEvent] = [
            TimelineEvent(id="e0", incident_id=self.incident.id, at=T0, kind=EventKind.CREATED, actor_id="alice")]

    def do(self, operation, *args, **kwargs) -> None:
        self.incident, new = operation(self.incident, *args, **kwargs)
        self.events.extend(new)

    def metrics(self, now: int) -> metrics.IncidentMetrics:
        return incident_metrics(self.incident, self.events, now)


def test_a_fresh_incident_has_only_its_running_time():
    r = Recorder()
    m = r.metrics(T0 + 5 * MIN)
    assert m.time_to_first_update_ms is None and m.time_to_resolve_ms is None
    assert m.ongoing_ms == 5 * MIN and m.stage_ms == (5 * MIN, 0, 0)
    assert m.steps_done == 0 and m.done_by == {} and m.restarts == 0


def test_first_update_stages_end_and_steps():
    r = Recorder()
    r.do(updates.post_update, "Looking", "bob", T0 + 4 * MIN, next_in_ms=None)
    r.do(updates.post_update, "Still looking", "alice", T0 + 9 * MIN, next_in_ms=None)
    r.do(checklist.check_step, (0, 0), "bob", T0 + 10 * MIN)
    r.do(checklist.check_step, (0, 1), "carol", T0 + 11 * MIN)
    r.do(checklist.uncheck_step, (0, 1), "carol", T0 + 12 * MIN)
    r.do(incidents.next_stage, "alice", T0 + 15 * MIN)
    r.do(checklist.check_step, (1, 0), "bob", T0 + 20 * MIN)
    r.do(incidents.set_stage, 2, "alice", T0 + 30 * MIN)
    r.do(incidents.end_incident, "alice", T0 + 45 * MIN)
    m = r.metrics(T0 + 999 * MIN)  # ended: nothing runs any more
    assert m.time_to_first_update_ms == 4 * MIN
    assert m.time_to_resolve_ms == 45 * MIN == m.ongoing_ms
    assert m.stage_ms == (15 * MIN, 15 * MIN, 15 * MIN)
    assert m.steps_done == 2 == r.incident.steps_done
    assert m.done_by == {"bob": 2}


def test_a_restarted_incident_resolves_at_its_last_end_and_counts_only_ongoing_time():
    r = Recorder()
    r.do(incidents.end_incident, "alice", T0 + 10 * MIN)
    r.do(incidents.restart_incident, "alice", T0 + 70 * MIN)  # ended for an hour
    r.do(incidents.next_stage, "alice", T0 + 75 * MIN)
    ongoing = r.metrics(T0 + 80 * MIN)
    assert ongoing.time_to_resolve_ms is None  # ongoing again: not resolved
    assert ongoing.ongoing_ms == 20 * MIN and ongoing.stage_ms == (15 * MIN, 5 * MIN, 0)
    assert ongoing.restarts == 1
    r.do(incidents.end_incident, "bob", T0 + 90 * MIN)
    ended = r.metrics(T0 + 200 * MIN)
    assert ended.time_to_resolve_ms == 90 * MIN  # start → last end
    assert ended.ongoing_ms == 30 * MIN and ended.stage_ms == (15 * MIN, 15 * MIN, 0)


def test_a_final_update_at_the_end_is_a_status_update():
    r = Recorder()
    r.do(incidents.end_incident, "alice", T0 + 7 * MIN, final_update="All good")
    assert r.metrics(T0 + 8 * MIN).time_to_first_update_ms == 7 * MIN


def test_removed_and_reopened_steps_are_not_done_and_the_last_checker_is_credited():
    r = Recorder()
    r.do(checklist.check_step, (0, 0), "bob", T0 + 1)
    r.do(checklist.uncheck_step, (0, 0), "bob", T0 + 2)
    r.do(checklist.check_step, (0, 0), "carol", T0 + 3)
    r.do(checklist.check_step, (0, 1), "bob", T0 + 4)
    r.do(checklist.remove_step, (0, 1), "alice", T0 + 5)
    m = r.metrics(T0 + 6)
    assert m.steps_done == 1 == r.incident.steps_done and m.done_by == {"carol": 1}


def test_times_recorded_out_of_order_never_count_negative():
    events = [TimelineEvent(id="a", incident_id="i", at=T0 - 50, kind=EventKind.ENDED, actor_id="x")]
    summary = summarize(T0, events)
    assert summary.resolve_ms == 0 and summary.ongoing_ms == 0 and summary.stage_ms == (0,)


def test_malformed_stage_details_are_ignored():
    bad = [TimelineEvent(id=str(n), incident_id="i", at=T0 + n, kind=EventKind.STAGE_CHANGED, actor_id="x",
                         details=details)
           for n, details in enumerate([{}, {"stage": "2"}, {"stage": -1}, {"stage": True}, {"stage": 10**9}])]
    assert summarize(T0, bad).stage == 0


def test_the_summary_round_trips_through_json():
    r = Recorder()
    r.do(incidents.next_stage, "alice", T0 + MIN)
    r.do(incidents.end_incident, "alice", T0 + 2 * MIN)
    summary = summarize(T0, r.events)
    assert metrics.MetricsSummary.model_validate_json(summary.model_dump_json()) == summary


@pytest.mark.parametrize(("values", "p", "expected"), [
    ([], 50, None), ([7], 50, 7), ([7], 90, 7), ([1, 2], 50, 1), ([3, 1, 2], 50, 2),
    ([1, 2, 3, 4], 50, 2), (list(range(1, 11)), 90, 9), (list(range(1, 12)), 90, 10), ([5, 5, 5], 100, 5),
])
def test_percentiles_are_nearest_rank(values, p, expected):
    assert percentile(values, p) == expected


def test_a_percentile_outside_1_to_100_is_refused():
    with pytest.raises(ValueError):
        percentile([1], 0)


def _row(n: int, playbook: str | None, severity: str | None, resolve: int | None) -> MetricsRow:
    return MetricsRow(incident_id=f"i{n}", team_id="t", playbook_id=playbook, channel_id=f"c{n}", public=True,
                      severity=severity, created_at=T0 + n, resolve_ms=resolve)


def test_aggregate_groups_by_playbook_then_severity():
    rows = [_row(1, "pb1", "SEV1", 10), _row(2, "pb1", "SEV1", 30), _row(3, "pb1", "SEV2", None),
            _row(4, "pb2", None, 5), _row(5, None, "SEV1", 100)]
    stats = aggregate(rows)
    assert stats.total.total == Figures(count=5, resolved=4, median_ms=10, p90_ms=100)
    assert stats.total.by_severity["SEV1"] == Figures(3, 3, 30, 100)
    assert stats.by_playbook["pb1"].total == Figures(3, 2, 10, 30)
    assert stats.by_playbook["pb1"].by_severity == {"SEV1": Figures(2, 2, 10, 30), "SEV2": Figures(1, 0, None, None)}
    assert stats.by_playbook["pb2"].by_severity == {None: Figures(1, 1, 5, 5)}
    assert stats.by_playbook[None].total == Figures(1, 1, 100, 100)
    assert stats.total.total.count == sum(p.total.count for p in stats.by_playbook.values())
    assert aggregate([]).total.total == Figures(0, 0, None, None) and aggregate([]).by_playbook == {}

"""Stats week by week (domain.metrics.by_week) and the stats page's chart geometry (backstage/stats.py)."""

from __future__ import annotations

import datetime as dt

from backstage.stats import Row, horizontal, weekly_bars, weekly_trend
from domain.metrics import WEEK_MS, Figures, MetricsRow, by_week, week_start

DAY = 86_400_000
MINUTE = 60_000


def at(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() * 1000)


def row(created: int, resolve_ms: int | None, severity: str | None = None) -> MetricsRow:
    return MetricsRow("i", "t", None, "c", True, severity, created, resolve_ms)


def test_weeks_start_on_monday_utc():
    assert week_start(at("2026-12-02T15:00:00")) == at("2026-11-30T00:00:00")  # a Wednesday → its Monday
    assert week_start(at("2026-11-30T00:00:00")) == at("2026-11-30T00:00:00")
    assert week_start(at("2026-11-29T23:59:59")) == at("2026-11-23T00:00:00")  # a Sunday: the week before
    assert week_start(0) == -3 * DAY  # 1970-01-01 was a Thursday


def test_by_week_has_every_week_of_the_period_with_exact_figures():
    since, until = at("2026-11-04T10:00:00"), at("2026-11-25T10:00:00")
    rows = [row(at("2026-11-04T12:00:00"), 10 * MINUTE), row(at("2026-11-05T12:00:00"), 30 * MINUTE),
            row(at("2026-11-06T12:00:00"), None), row(at("2026-11-24T12:00:00"), 90 * MINUTE)]
    weeks = by_week(rows, since=since, until=until)
    assert [w.start for w in weeks] == [at("2026-11-02T00:00:00") + i * WEEK_MS for i in range(4)]
    assert weeks[0].figures == Figures(3, 2, 10 * MINUTE, 30 * MINUTE)
    assert weeks[1].figures == weeks[2].figures == Figures(0, 0, None, None)
    assert weeks[3].figures == Figures(1, 1, 90 * MINUTE, 90 * MINUTE)
    assert by_week(rows, since=until, until=since) == ()


def test_chart_geometry_is_proportional_and_stays_inside():
    since = at("2026-11-02T00:00:00")
    rows = [row(since + DAY, 60 * MINUTE)] * 4 + [row(since + WEEK_MS + DAY, 180 * MINUTE)] * 2
    weeks = by_week(rows, since=since, until=since + 2 * WEEK_MS)
    bars = weekly_bars(weeks)
    assert [b.value for b in bars.bars] == [4, 2, 0]
    assert bars.bars[0].height == 2 * bars.bars[1].height and bars.bars[2].height == 0
    assert all(0 <= b.y <= bars.height and b.x + b.width <= bars.width for b in bars.bars)
    trend = weekly_trend(weeks)
    assert len(trend.median) == 2 and len(trend.p90) == 2  # the empty week has no point
    assert trend.median[0].y > trend.median[1].y  # 1h is drawn lower than 3h
    assert trend.y_ticks[-1].label.endswith("h")
    chart = horizontal([Row("a", Figures(5, 0, None, None)), Row("b", Figures(0, 0, None, None))])
    assert chart.bars[0].width > 0 and chart.bars[1].width == 0 and chart.height == 2 * 26

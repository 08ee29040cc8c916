"""The backstage's stats page (issue 19): incidents per week, the time-to-resolve trend (median and
p90 per week), per playbook and per severity — as charts and as tables.

The figures are services/stats.py's, the ones the ``stats`` command prints (same visibility: a
private incident counts only for its channel's members and system admins); the page adds nothing
but drawing. The charts are SVG written here and in the template, not a chart library: the page's
Content-Security-Policy allows no script and no inline style, and what the libraries on PyPI emit
(pygal: an embedded ``<style>`` sheet and script hooks; matplotlib: a heavy dependency drawing
pictures of text) would either be refused by it or need the policy loosened. Plain ``<rect>``,
``<polyline>`` and ``<text>`` with classes from backstage.css are all a bar or trend chart needs;
each chart is followed by a table with the same numbers (screen readers, and the tests, read it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from backstage.app import Backstage, viewer
from domain.errors import NotFound, ValidationError
from domain.metrics import Figures, PlaybookStats, Week
from gateway.messages import format_duration
from services.history import HistoryService
from services.playbooks import PlaybookService
from services.stats import DAYS_DEFAULT, DAYS_MAX, NO_SEVERITY, StatsResult, StatsService

DAY_CHOICES = (7, 30, 90, 180, 365)
NO_PLAYBOOK = "(no playbook)"
DELETED = "(a deleted playbook)"
NOT_SET = "not set"
#: Playbooks drawn in the chart (the table lists them all).
PLAYBOOKS_DRAWN = 20
_W, _H = 640, 220  # the weekly charts' drawing size
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 12, 34


@dataclass(frozen=True)
class Row:
    """One line of a table (and one bar of its chart)."""

    label: str
    figures: Figures

    @property
    def median(self) -> str:
        return _duration(self.figures.median_ms)

    @property
    def p90(self) -> str:
        return _duration(self.figures.p90_ms)


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class WeekChart:
    """Bars (incidents per week) or two lines (median and p90 per week) over the weeks."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    median: tuple[Point, ...] = ()
    p90: tuple[Point, ...] = ()

    @property
    def median_line(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.median)

    @property
    def p90_line(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.p90)


@dataclass(frozen=True)
class HBarChart:
    """Horizontal bars: incidents per playbook or per severity."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    label_width: int


def _duration(ms: int | None) -> str:
    return "–" if ms is None else format_duration(ms)


def _day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d")


def _nice_top(value: float) -> float:
    """A round number at or above ``value`` for an axis (1, 2, 5 × 10^n)."""
    if value <= 0:
        return 1
    step = 1.0
    while step * 10 <= value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if factor * step >= value:
            return factor * step
    return 10 * step


def _x_ticks(weeks: Sequence[Week], slot: float) -> tuple[Tick, ...]:
    every = max(1, len(weeks) // 8)
    return tuple(Tick(_LEFT + slot * (i + 0.5), _day(week.start)[5:]) for i, week in enumerate(weeks)
                 if i % every == 0)


def weekly_bars(weeks: Sequence[Week]) -> WeekChart:
    inner_w, inner_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    top = _nice_top(max((w.figures.count for w in weeks), default=0))
    slot = inner_w / max(1, len(weeks))
    bars = []
    for i, week in enumerate(weeks):
        height = inner_h * week.figures.count / top
        bars.append(Bar(f"week of {_day(week.start)}", week.figures.count, _LEFT + slot * i + slot * 0.15,
                        _TOP + inner_h - height, slot * 0.7, height))
    ticks = tuple(Tick(_TOP + inner_h - inner_h * f, f"{top * f:g}") for f in (0, 0.5, 1))
    return WeekChart(_W, _H, tuple(bars), ticks, _x_ticks(weeks, slot))


def weekly_trend(weeks: Sequence[Week]) -> WeekChart:
    inner_w, inner_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    highest = max((w.figures.p90_ms or 0 for w in weeks), default=0)
    hours = highest / 3_600_000
    unit, unit_ms = ("h", 3_600_000) if hours >= 2 else ("m", 60_000)
    top = _nice_top(highest / unit_ms) if highest else 1
    slot = inner_w / max(1, len(weeks))

    def points(values: Sequence[tuple[Week, int | None]]) -> tuple[Point, ...]:
        return tuple(Point(_LEFT + slot * (i + 0.5), _TOP + inner_h - inner_h * (value / unit_ms) / top,
                           f"week of {_day(week.start)}: {_duration(value)}")
                     for i, (week, value) in enumerate(values) if value is not None)

    ticks = tuple(Tick(_TOP + inner_h - inner_h * f, f"{top * f:g}{unit}") for f in (0, 0.5, 1))
    return WeekChart(_W, _H, (), ticks, _x_ticks(weeks, slot),
                     median=points([(w, w.figures.median_ms) for w in weeks]),
                     p90=points([(w, w.figures.p90_ms) for w in weeks]))


def horizontal(rows: Sequence[Row]) -> HBarChart:
    label_width, row_h, width = 180, 26, _W
    top = _nice_top(max((r.figures.count for r in rows), default=0))
    inner = width - label_width - 60
    bars = tuple(Bar(row.label, row.figures.count, label_width, i * row_h + 4, inner * row.figures.count / top,
                     row_h - 8) for i, row in enumerate(rows))
    return HBarChart(width, max(1, len(rows)) * row_h, bars, label_width)


def playbook_rows(result: StatsResult) -> list[Row]:
    """Per playbook, most incidents first (as the chat orders them)."""
    ordered = sorted(result.stats.by_playbook.items(),
                     key=lambda item: (-item[1].total.count, result.titles.get(item[0] or "", "").lower(),
                                       item[0] or ""))
    return [Row(NO_PLAYBOOK if pid is None else result.titles.get(pid, DELETED), stats.total)
            for pid, stats in ordered]


def severity_rows(stats: PlaybookStats) -> list[Row]:
    return [Row(NOT_SET if severity is None else severity, figures) for severity, figures in
            sorted(stats.by_severity.items(), key=lambda item: (item[0] is None, item[0] or ""))]


def setup(backstage: Backstage, stats: StatsService, playbooks: PlaybookService, history: HistoryService) -> None:
    async def page(request: web.Request) -> web.Response:
        who = viewer(request)
        teams = await history.teams_of(who.user_id, "")
        asked = request.query.get("team", "")
        if asked and asked not in teams:
            raise NotFound("not your team")
        team_id = asked or (teams[0] if teams else "")
        days_text = request.query.get("days", "") or str(DAYS_DEFAULT)
        if not days_text.isdigit() or not 1 <= int(days_text) <= DAYS_MAX:
            raise ValidationError(f"The period is a number of days from 1 to {DAYS_MAX}, e.g. 90.", field="days")
        days = int(days_text)
        playbook_id = request.query.get("playbook", "")[:64]
        severity = request.query.get("severity", "")[:64]
        known = {team.id: team.display_name or team.name for team in await backstage.ctx.client.my_teams()}
        if not team_id:
            return backstage.render(request, "stats.html", title="Stats", result=None, team_id="", teams={},
                                    choices=[], days=days, day_choices=DAY_CHOICES, playbook_id="",
                                    severity="", no_severity=NO_SEVERITY)
        result = await stats.stats(who.user_id, team_id, days=days, playbook_id=playbook_id, severity=severity)
        choices = [(p.id, p.title) for p in await playbooks.visible(team_id, who.user_id)]
        weeks = list(result.weeks)
        severity_choices = [(NO_SEVERITY if s is None else s, NOT_SET if s is None else s) for s in result.severities]
        if severity and severity not in {value for value, _ in severity_choices}:
            severity_choices.append((severity, NOT_SET if severity == NO_SEVERITY else severity))  # shown as chosen
        return backstage.render(
            request, "stats.html", title="Stats", result=result, team_id=team_id,
            teams={t: known.get(t, t) for t in teams}, choices=choices, days=days,
            day_choices=sorted({*DAY_CHOICES, days}), playbook_id=playbook_id, severity=severity,
            no_severity=NO_SEVERITY, total=Row("All", result.stats.total.total),
            week_rows=[Row(_day(w.start), w.figures) for w in weeks],
            per_week=weekly_bars(weeks), trend=weekly_trend(weeks),
            playbooks=playbook_rows(result), severities=severity_rows(result.stats.total),
            playbook_chart=horizontal(playbook_rows(result)[:PLAYBOOKS_DRAWN]),
            severity_chart=horizontal(severity_rows(result.stats.total)),
            severity_choices=severity_choices, since=_day(result.since))

    backstage.page("GET", "/stats", page)
    backstage.nav.append(("Stats", "/stats"))


__all__ = ["horizontal", "playbook_rows", "setup", "severity_rows", "weekly_bars", "weekly_trend"]

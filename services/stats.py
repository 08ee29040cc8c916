"""Incident stats over a period (issue 18, docs/metrics.md): count, median and p90 time to resolve,
per playbook and by severity, over the incidents one viewer may see.

Cost: one store query over the per-incident metrics summaries (``Store.metrics_rows``: a short
index entry per incident of the period, never an event or a checklist), then membership of the
private channels among them from the directory (``members_among``, as the list does), then the
pure aggregation (``domain.metrics.aggregate``).

Visibility is the list's (services/history.py): system admins count everything; others the team's
public incidents and the private ones whose channel they are a member of — a private incident one
has left is no longer counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import ValidationError
from domain.metrics import Stats, Week, aggregate, by_week
from services.context import BotContext
from services.history import NO_TEAM, HistoryService

DAY_MS = 86_400_000
DAYS_DEFAULT = 30
DAYS_MAX = 3650
#: The ``severity`` that narrows stats to the incidents without one.
NO_SEVERITY = "-"


@dataclass(frozen=True)
class StatsResult:
    """What one viewer may see of a team's incidents started since ``since``."""

    team_id: str
    days: int
    since: int
    #: The playbook the stats are narrowed to (None: every playbook).
    playbook_title: str | None
    stats: Stats
    #: Playbook id → title, for the playbooks in ``stats`` (None: no playbook; a deleted one is absent).
    titles: dict[str, str]
    #: Summaries read from the store for this answer (visible or not).
    rows_read: int
    #: The same incidents week by week (Monday 00:00 UTC), every week of the period.
    weeks: tuple[Week, ...] = ()
    #: The severity the stats are narrowed to ("" every one; NO_SEVERITY: incidents without one).
    severity: str = ""
    #: Every severity among the incidents before that narrowing (None: not set), for choosing one.
    severities: tuple[str | None, ...] = ()


def check_days(days: int) -> int:
    if not 1 <= days <= DAYS_MAX:
        raise ValidationError(f"--days is a number of days from 1 to {DAYS_MAX}, e.g. --days 90.")
    return days


class StatsService:
    """Stats of the incidents a viewer may see."""

    def __init__(self, ctx: BotContext, history: HistoryService) -> None:
        self.ctx = ctx
        self.history = history

    async def stats(self, user_id: str, team_id: str, *, days: int = DAYS_DEFAULT,
                    playbook_name: str = "", playbook_id: str = "", severity: str = "") -> StatsResult:
        """The stats of ``team_id`` (in a DM: the one team shared with the bot) as ``user_id`` may see
        them, over the last ``days`` days, of the playbook called ``playbook_name`` (one the user may
        use; "" for every playbook) — or of the one with ``playbook_id`` (a pick from a list) — and,
        when ``severity`` is given, of the incidents with that severity only (NO_SEVERITY: none set)."""
        check_days(days)
        teams = await self.history.teams_of(user_id, team_id)
        if len(teams) != 1:
            raise ValidationError(NO_TEAM)
        team_id = teams[0]
        actor = await self.history.require_team(team_id, user_id)
        playbook = await self.history.playbook_named(team_id, user_id, playbook_name) if playbook_name else None
        if playbook_id and playbook is None:
            playbook = await self.history.playbook_usable(team_id, user_id, playbook_id)
        since = self.ctx.clock() - days * DAY_MS
        rows = await self.ctx.store.metrics_rows(team_id, since=since,
                                                 playbook_id=playbook.id if playbook else None)
        visible = rows
        if not actor.is_system_admin:
            private = [row.channel_id for row in rows if not row.public]
            member_of = await self.history.members_among(private, user_id) if private else set()
            visible = [row for row in rows if row.public or row.channel_id in member_of]
        severities = tuple(sorted({row.severity for row in visible}, key=lambda s: (s is None, s or "")))
        if severity:
            wanted = None if severity == NO_SEVERITY else severity
            visible = [row for row in visible if row.severity == wanted]
        stats = aggregate(visible)
        titles: dict[str, str] = {}
        for listed_id in stats.by_playbook:
            if listed_id is not None:
                title = await self.history.playbook_title(listed_id)
                if title is not None:
                    titles[listed_id] = title
        return StatsResult(team_id, days, since, playbook.title if playbook else None, stats, titles, len(rows),
                           weeks=by_week(visible, since=since, until=self.ctx.clock()), severity=severity,
                           severities=severities)


__all__ = ["DAYS_DEFAULT", "DAYS_MAX", "DAY_MS", "NO_SEVERITY", "StatsResult", "StatsService", "check_days"]

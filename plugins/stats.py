"""The ``stats [playbook] [--days N]`` command: count, median and p90 time to resolve of the incidents
the user may see, per playbook and by severity (issue 18, docs/metrics.md).

Thin: parse the words → StatsService → a markdown table.
"""

from __future__ import annotations

import shlex

from domain.errors import ValidationError
from domain.metrics import Figures, PlaybookStats
from gateway.cards import format_time
from gateway.messages import format_duration, inline_code, neutralize, usage_line
from gateway.models import CommandReply, SlashCommand
from gateway.routing import on_command
from plugins.base import FeaturePlugin
from services.context import BotContext
from services.stats import DAYS_DEFAULT, StatsResult, StatsService, check_days

#: Playbooks shown in one answer (a reply is one post); the rest are summed up in a line.
PLAYBOOKS_SHOWN = 20
_NO_PLAYBOOK = "(no playbook)"
_DELETED = "(a deleted playbook)"


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote: take the words as typed
        return text.split()


def parse_stats(arguments: str, usage: str) -> tuple[str, int]:
    """The playbook name typed (maybe "") and the number of days."""
    days = DAYS_DEFAULT
    name: list[str] = []
    words = _words(arguments)
    position = 0
    while position < len(words):
        word = words[position]
        option, _, inline = word.partition("=")
        if option.lower() == "--days":
            value = inline
            if not value:
                position += 1
                value = words[position] if position < len(words) else ""
            if not value.isdigit():
                shown = inline_code(value, limit=30) if value else "nothing"
                raise ValidationError(f"--days needs a whole number of days, not {shown}. {usage}")
            days = check_days(int(value))
        elif word.startswith("--") and len(word) > 2:
            raise ValidationError(f"{inline_code(word, limit=60)} is not a stats option. {usage}")
        else:
            name.append(word)
        position += 1
    return " ".join(name).strip(), days


def _duration(ms: int | None) -> str:
    return "–" if ms is None else format_duration(ms)


def _row(label: str, severity: str, figures: Figures) -> str:
    return (f"| {label} | {severity} | {figures.count} | {figures.resolved} | {_duration(figures.median_ms)} | "
            f"{_duration(figures.p90_ms)} |")


def _severity_rows(label: str, stats: PlaybookStats) -> list[str]:
    rows = [_row(label, "all", stats.total)]
    if set(stats.by_severity) != {None}:  # a severity line only when one was set
        for severity in sorted(stats.by_severity, key=lambda s: (s is None, s or "")):
            shown = "not set" if severity is None else neutralize(severity)
            rows.append(_row("", shown, stats.by_severity[severity]))
    return rows


def render_stats(result: StatsResult) -> str:
    """The stats as markdown: a headline, then a table per playbook and severity."""
    stats, playbook_title = result.stats, result.playbook_title
    where = f' of playbook "{neutralize(playbook_title)}"' if playbook_title else ""
    heading = (f"#### Incident stats{where} · last {result.days} day{'s' if result.days != 1 else ''}\n"
               f"Incidents you can see, started since {format_time(result.since)}. Time to resolve: from the "
               "start to the last end, over the incidents ended now.")
    total = stats.total.total
    if not total.count:
        return f"{heading}\n\nNo incident you can see started in this period."
    lines = [heading, "",
             f"**{total.count}** incident{'s' if total.count != 1 else ''} · **{total.resolved}** resolved · "
             f"median time to resolve **{_duration(total.median_ms)}** · p90 **{_duration(total.p90_ms)}**", "",
             "| Playbook | Severity | Incidents | Resolved | Median to resolve | p90 to resolve |",
             "|:--|:--|--:|--:|--:|--:|"]
    ordered = sorted(stats.by_playbook.items(),
                     key=lambda item: (-item[1].total.count, result.titles.get(item[0] or "", "").lower(),
                                       item[0] or ""))
    if len(ordered) > 1 or playbook_title is None:
        lines.extend(_severity_rows("**All**", stats.total))
    for playbook_id, playbook_stats in ordered[:PLAYBOOKS_SHOWN]:
        if playbook_id is None:
            label = _NO_PLAYBOOK
        else:
            label = neutralize(result.titles[playbook_id]) if playbook_id in result.titles else _DELETED
        lines.extend(_severity_rows(label, playbook_stats))
    if len(ordered) > PLAYBOOKS_SHOWN:
        rest = ordered[PLAYBOOKS_SHOWN:]
        lines.append("")
        lines.append(f"And {len(rest)} more playbooks ({sum(s.total.count for _, s in rest)} incidents): "
                     "name one to see its figures.")
    return "\n".join(lines)


class StatsPlugin(FeaturePlugin):
    """The ``stats`` command."""

    def __init__(self, ctx: BotContext, service: StatsService) -> None:
        super().__init__(ctx)
        self.service = service

    @on_command("stats")
    async def on_stats(self, command: SlashCommand) -> CommandReply:
        name, days = parse_stats(command.arguments, usage_line("stats", self.prefix(command)))
        result = await self.service.stats(command.user_id, command.team_id, days=days, playbook_name=name)
        return CommandReply(text=render_stats(result))


__all__ = ["StatsPlugin", "parse_stats", "render_stats"]

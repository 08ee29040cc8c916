"""Looking back: the ``list``, ``info`` and ``export`` commands.

Thin: parse what the user typed (or the signed page button) → HistoryService → markdown reply.
Who is asking always comes from Mattermost (``user_id``); the page buttons carry the filters and the
list's owner in a signed context, only the owner may turn its pages, and visibility is computed
again on every click.

Paging must work on every supported Mattermost release. Released servers hand an action's
``update`` to ``UpdatePost`` (app/integration_action.go ``DoPostActionWithCookie``), which cannot
find an ephemeral post and answers 404, so the ephemeral ``list`` reply is never updated.
A page button on that reply instead posts the page as a real post in the user's direct messages
with the bot; that post's buttons update it in place, which every release allows. (A fresh
ephemeral post with buttons is no way out: ``POST /posts/ephemeral`` needs ``create_post_ephemeral``,
which the default roles give only to system admins — model/role.go ``MakeDefaultRoles``.)
"""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass
from typing import Any

from domain import IncidentStatus, NotFound, ValidationError
from domain.errors import COMMAND
from domain.fields import shown_values
from domain.ids import is_valid_id
from domain.models import EventKind, FieldKind, Incident
from domain.retro import status_label as retro_label
from gateway import payloads as p
from gateway import ui
from gateway.cards import format_time
from gateway.ids import Action
from gateway.messages import command as typed_command
from gateway.messages import format_duration, inline_code, limited_markdown, neutralize, page_link
from gateway.models import ActionCallback, ActionReply, CommandReply, SlashCommand
from gateway.routing import on_action, on_command
from plugins.base import FeaturePlugin
from services.context import BotContext
from services.history import NO_TEAM, HistoryService, IncidentDetails, ListFilters, ListPage, overdue_mark

LIST_USAGE = (f"Usage: {COMMAND}list [ongoing|ended|all|overdue] [@commander] [severity=LEVEL] [field:NAME=VALUE] "
              f"[--playbook NAME] [--search TEXT] [--page N], "
              f'e.g. {COMMAND}list ongoing @alice --search "database"')
_STATUS_WORDS = {"ongoing": IncidentStatus.ONGOING, "active": IncidentStatus.ONGOING,
                 "ended": IncidentStatus.ENDED, "all": None}
_MENTION = re.compile(r"^@([a-z0-9._-]{1,64})$", re.IGNORECASE)
_OPTIONS = ("--playbook", "--search", "--page")
EXPORT_USAGE = (f"Usage: {COMMAND}export [incident] [--raw] — the CSV is spreadsheet-safe unless you add --raw, "
                f"e.g. {COMMAND}export ~payments-502s --raw")
_MAX_NAMES_SHOWN = 25
#: Characters of step descriptions the info command shows in full; later ones get one line (a reply is one post,
#: at most 16,383 characters, and the rest of the view needs room too).
_DESCRIPTIONS_IN_FULL_MAX = 6000
_DESCRIPTION_LINE_MAX = 120
NOT_YOUR_LIST = ("This incident list was made for someone else (or by an older version of Command Center). "
                 f"Type {COMMAND}list to see yours.")


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote: take the words as typed
        return text.split()


def _export_options(arguments: str) -> tuple[str, bool]:
    """The incident reference and whether ``--raw`` was given; any other ``--option`` is refused."""
    raw = False
    kept = []
    for word in re.split(r"(\s+)", arguments):
        if word.lower() == "--raw":
            raw = True
        elif word.startswith("--") and len(word) > 2:
            raise ValidationError(f"{inline_code(word, limit=60)} is not an export option. {EXPORT_USAGE}")
        else:
            kept.append(word)
    return "".join(kept).strip(), raw


def _status_label(incident: Incident) -> str:
    return "Ongoing" if incident.is_ongoing else "Ended"


def _stage_label(incident: Incident) -> str:
    return f"({incident.active_stage + 1}/{len(incident.stages)}) {neutralize(incident.current_stage.title)}"


def _who(names: dict[str, str], user_id: str | None) -> str:
    if not user_id:
        return "nobody"
    name = names.get(user_id)
    return f"@{name}" if name else "a former user"


@dataclass(frozen=True)
class ListView:
    """One user's list as shown in one place: whose it is, what it is narrowed to, and where it sits."""

    owner_id: str
    team_id: str
    channel_id: str
    filters: ListFilters
    on_ephemeral: bool    # an ephemeral post cannot be updated by its buttons on released servers


class HistoryPlugin(FeaturePlugin):
    """The incident list (with page buttons), the details view and the channel export."""

    def __init__(self, ctx: BotContext, service: HistoryService) -> None:
        super().__init__(ctx)
        self.service = service
        self.directory = service.directory

    # List ----------------------------------------------------------------------------------

    async def _parse_list(self, command: SlashCommand, team_id: str) -> tuple[ListFilters, int]:
        status: IncidentStatus | None = None
        commander_id = playbook_id = search = None
        only_overdue = False
        field_values: dict[str, str] = {}
        page = 1
        words = _words(command.arguments)
        position = 0
        while position < len(words):
            word = words[position]
            lowered = word.lower()
            option, _, inline = lowered.partition("=")
            if option in _OPTIONS:
                # An option's value runs to the next --option, so unquoted names with spaces work too.
                value_words = [word.partition("=")[2]] if inline else []
                position += 1
                while position < len(words) and words[position].lower().partition("=")[0] not in _OPTIONS:
                    value_words.append(words[position])
                    position += 1
                value = " ".join(v for v in value_words if v).strip()
                if not value:
                    raise ValidationError(f"{option} needs a value. {LIST_USAGE}")
                if option == "--page":
                    if not value.isdigit() or int(value) < 1:
                        raise ValidationError(f'"{neutralize(value)}" is not a page number; pages count from 1.')
                    page = int(value)
                elif option == "--search":
                    search = value
                else:
                    playbook_id = (await self.service.playbook_named(team_id, command.user_id, value)).id
                continue
            if "=" in word and (option == "severity" or option.startswith("field:")):
                # A field filter (issue 18): severity=SEV1, field:customer=ACME, field:"due date"=2026-03-01.
                name = "severity" if option == "severity" else word.partition("=")[0][len("field:"):].strip('"')
                field_id, value, _ = await self.service.field_filter(team_id, command.user_id, name,
                                                                     word.partition("=")[2].strip('"'))
                field_values[field_id] = value
                position += 1
                continue
            if lowered == "overdue":
                only_overdue = True
            elif lowered in _STATUS_WORDS:
                status = _STATUS_WORDS[lowered]
            elif _MENTION.match(word):
                # Missing and outside the team get one answer (the bot sees other teams' users).
                user = await self.directory.team_user_by_username(team_id, word)
                if user is None:
                    raise NotFound(f"There is no user {neutralize(word)} in this team. Check the spelling.")
                commander_id = user.id
            else:
                raise ValidationError(f'I do not understand "{neutralize(word)}". {LIST_USAGE}')
            position += 1
        return ListFilters(status=status, commander_id=commander_id, playbook_id=playbook_id, search=search,
                           overdue=only_overdue, field_values=tuple(sorted(field_values.items()))), page

    async def _list_team(self, command: SlashCommand) -> str:
        teams = await self.service.teams_of(command.user_id, command.team_id)
        if len(teams) != 1:
            raise ValidationError(NO_TEAM)
        return teams[0]

    @on_command("list")
    async def on_list(self, command: SlashCommand) -> CommandReply:
        team_id = await self._list_team(command)
        filters, page = await self._parse_list(command, team_id)
        # A typed direct message is answered with a real post; a slash command with an ephemeral one.
        view = ListView(command.user_id, team_id, command.channel_id, filters, on_ephemeral=not command.via_dm)
        text, attachments = await self._render_list(view, page - 1)
        return CommandReply(text=text, attachments=attachments)

    @on_action(Action.LIST_PAGE)
    async def on_list_page(self, callback: ActionCallback, button: p.ListPage) -> ActionReply:
        if button.owner_id != callback.user_id:
            # Another reader of the post (a system admin can read any DM) must not replace its owner's
            # list with what they may see.
            return ActionReply(ephemeral_text=self.rendered(NOT_YOUR_LIST))
        try:
            status = IncidentStatus(button.status) if button.status else None
        except ValueError:
            raise ValidationError(f"This page button is broken; type {COMMAND}list again.") from None
        filters = ListFilters(status=status, commander_id=button.commander_id or None,
                              playbook_id=button.playbook_id or None, search=button.search or None,
                              overdue=button.overdue, field_values=tuple(sorted(button.field_values.items())))
        page, team_id = button.page, button.team_id
        if button.on_ephemeral:
            return await self._page_in_direct_messages(callback.user_id, team_id, filters, page)
        view = ListView(callback.user_id, team_id, callback.channel_id, filters, on_ephemeral=False)
        text, attachments = await self._render_list(view, page)
        return ActionReply(update={"message": text, "props": {"attachments": attachments}})

    async def _page_in_direct_messages(self, user_id: str, team_id: str, filters: ListFilters,
                                       page: int) -> ActionReply:
        """Turn a page of an ephemeral list: post it where its buttons can update it in place."""
        dm = await self.ctx.client.direct_channel_with(user_id)
        view = ListView(user_id, team_id, dm.id, filters, on_ephemeral=False)
        text, attachments = await self._render_list(view, page)
        await self.ctx.client.create_post(dm.id, text, props={"attachments": attachments} if attachments else None)
        return ActionReply(ephemeral_text=f"Page {page + 1} of your incident list is in your direct messages with "
                                          f"@{self.ctx.client.username}; its buttons turn the pages there.")

    def _page_button(self, label: str, view: ListView, page: int, style: str = "default") -> ui.Button:
        filters = view.filters
        return ui.Button(f"listpage{page}", label, p.ListPage(
            team_id=view.team_id, status=filters.status.value if filters.status else "",
            commander_id=filters.commander_id or "", playbook_id=filters.playbook_id or "",
            search=filters.search or "", page=page, owner_id=view.owner_id, on_ephemeral=view.on_ephemeral,
            overdue=filters.overdue, field_values=dict(filters.field_values)), style)

    def _pages(self, view: ListView, buttons: list[ui.Button]) -> list[dict[str, Any]]:
        """The page buttons' attachment as JSON (none without buttons)."""
        if not buttons:
            return []
        return [ui.Attachment(fallback="Incident list pages", actions=tuple(buttons)).to_json(
            self.ctx.signer, self.ctx.action_url, view.channel_id)]

    async def _describe_filters(self, filters: ListFilters) -> str:
        parts = []
        if filters.overdue:
            parts.append("update overdue")
        if filters.status is not None:
            parts.append(filters.status.value)
        if filters.commander_id:
            parts.append(f"commander @{await self.directory.username(filters.commander_id)}")
        if filters.playbook_id:
            title = await self.service.playbook_title(filters.playbook_id)
            parts.append(f'playbook "{neutralize(title)}"' if title is not None else "the chosen playbook")
        if filters.search:
            parts.append(f'name contains "{neutralize(filters.search)}"')
        for field_id, value in filters.field_values:
            shown = f"@{await self.directory.username(value)}" if is_valid_id(value) else neutralize(value)
            parts.append(f"{neutralize(field_id)} = {shown}")
        return ", ".join(parts)

    async def _render_list(self, view: ListView, page: int) -> tuple[str, list[dict[str, Any]]]:
        filters = view.filters
        result = await self.service.list_page(view.owner_id, view.team_id, filters, page)
        described = await self._describe_filters(filters)
        heading = "#### Incidents" + (f" ({described})" if described else "")
        if not result.items:
            if page > 0 and (result.total or result.at_least):
                text = f"{heading}\nThere is no page {page + 1}; type {self.command('list')} to start again."
            elif described:
                text = f"{heading}\nNo incident you can see matches these filters."
            else:
                text = f"{heading}\nNo incidents you can see in this team yet. Start one with {self.command('start')}."
            return text, self._pages(view, [self._page_button("◀ First page", view, 0)] if page > 0 else [])
        lines = [heading, self._range_line(result), "",
                 "| Incident | Status | Commander | Stage | Started | Duration |",
                 "|:--|:--|:--|:--|:--|:--|"]
        names = await self.service.usernames(i.commander_id for i in result.items)
        channels = await self.service.channel_names((i.channel_id for i in result.items), view.team_id)
        now = self.ctx.clock()
        for incident in result.items:
            channel = channels.get(incident.channel_id)
            link = f" ~{channel}" if channel else ""
            page_url = page_link(self.ctx.callback_base_url, incident.id)
            link += f" · {page_url}" if page_url else ""
            lines.append(f"| **{neutralize(incident.name)}**{link} | {_status_label(incident)}"
                         f"{overdue_mark(incident, now)} | "
                         f"{_who(names, incident.commander_id)} | {_stage_label(incident)} | "
                         f"{format_time(incident.created_at)} | {format_duration(incident.duration_ms(now))} |")
        buttons: list[ui.Button] = []
        if page > 0:
            buttons.append(self._page_button("◀ Previous", view, page - 1))
        if result.has_more:
            buttons.append(self._page_button("Next ▶", view, page + 1, "primary"))
            lines.append("")
            lines.append(f"More: click Next, or type `{self.command(f'list … --page {page + 2}')}`.")
        return "\n".join(lines), self._pages(view, buttons)

    @staticmethod
    def _range_line(result: ListPage) -> str:
        first = result.first_number
        last = first + len(result.items) - 1
        if result.total is not None:
            pages = max(1, -(-result.total // result.per_page))
            return f"{first}–{last} of {result.total} · page {result.page + 1} of {pages} · newest first"
        return f"{first}–{last} of {result.at_least}+ · page {result.page + 1} · newest first"

    # Info ----------------------------------------------------------------------------------

    @on_command("info")
    async def on_info(self, command: SlashCommand) -> CommandReply:
        incident = await self.service.resolve(command.user_id, command.team_id, command.channel_id,
                                              command.arguments, "info")
        return CommandReply(text=render_details(await self.service.details(incident), self.ctx.clock(), self.trigger,
                                                page=page_link(self.ctx.callback_base_url, incident.id,
                                                               "Open its page")))

    # Export --------------------------------------------------------------------------------

    @on_command("export")
    async def on_export(self, command: SlashCommand) -> CommandReply:
        reference, raw = _export_options(command.arguments)
        incident = await self.service.resolve(command.user_id, command.team_id, command.channel_id,
                                              reference, "export")
        result = await self.service.export(incident, command.user_id, raw=raw)
        bot = self.ctx.client.username
        if result.pending:
            return CommandReply(text=f"Exporting **{neutralize(incident.name)}**: it is a large channel, so the CSV "
                                     f"will arrive in your direct messages with @{bot} in a moment.")
        return CommandReply(text=f"I sent you the CSV of **{neutralize(incident.name)}** ({result.posts} posts) in "
                                 f"your direct messages with @{bot}.")


def render_details(details: IncidentDetails, now: int, trigger: str, *, page: str = "") -> str:
    """The details view as markdown; ``page``: a link to the incident's backstage page, shown under the title."""
    incident, figures, names = details.incident, details.figures, details.usernames
    icon = "🚨" if incident.is_ongoing else "✅"
    channel = f"~{details.channel_name} · " if details.channel_name else ""
    playbook = neutralize(incident.playbook_title) if incident.playbook_title else "(none)"
    lines = [f"#### {icon} {neutralize(incident.name)}",
             f"{channel}**{_status_label(incident)}** · commander {_who(names, incident.commander_id)} · "
             + f"playbook {playbook}" + (f" · {page}" if page else "")]
    times = f"Started {format_time(incident.created_at)}"
    if incident.ended_at is not None:
        times += f" · ended {format_time(incident.ended_at)}"
    lines.append(f"{times} · duration **{format_duration(incident.duration_ms(now))}**")
    if incident.description:
        lines.append(f"> {neutralize(incident.description)}")
    if figures.readable:
        people = sorted((_who(names, user_id) for user_id in figures.members_involved), key=str.lower)
        shown = ", ".join(people[:_MAX_NAMES_SHOWN]) + (f" and {len(people) - _MAX_NAMES_SHOWN} more"
                                                         if len(people) > _MAX_NAMES_SHOWN else "")
        lines.append(f"Members involved: **{len(people)}**" + (f" ({shown})" if people else ""))
        lines.append(f"Messages: **{figures.messages_by_people}** posted by people (replies included) · "
                     f"{figures.messages_by_bots} by bots and integrations · {figures.system_messages} system "
                     "messages")
    else:
        lines.append("Members involved and messages: unknown, Command Center can no longer read the channel.")
    lines.append(f"Active stage: **{_stage_label(incident)}** · steps done "
                 f"**{incident.steps_done}/{incident.steps_total}**")
    lines.extend(_fields_lines(incident, names))
    lines.append("")
    lines.append("**Stages**")
    description_budget = _DESCRIPTIONS_IN_FULL_MAX
    for s, stage in enumerate(incident.stages):
        marker = " ← active" if s == incident.active_stage else ""
        lines.append(f"**{s + 1}. {neutralize(stage.title)}** ({stage.done_count}/{len(stage.steps)} done){marker}")
        for n, step in enumerate(stage.steps):
            line = f"- {'✅' if step.done else '⬜'} {s + 1}.{n + 1} {limited_markdown(step.title, one_line=True)}"
            if step.done and step.state_changed_at:
                line += f" — done by {_who(names, step.state_changed_by)}, {format_time(step.state_changed_at)}"
            lines.append(line)
            if step.description:
                # In full while the reply stays well inside a post; past that, one line and where to read it.
                if len(step.description) <= description_budget:
                    description_budget -= len(step.description)
                    shown = limited_markdown(step.description)
                else:
                    shown = (limited_markdown(step.description, one_line=True, limit=_DESCRIPTION_LINE_MAX)
                             + f" (all of it: `{typed_command(trigger, f'step show {s + 1}.{n + 1}')}`)")
                lines.append(textwrap.indent(shown, "  "))
    lines.append("")
    lines.append("**Timeline of step completions**")
    if not details.completions:
        lines.append("No step has been completed yet.")
    for event in details.completions:
        verb = "completed" if event.kind is EventKind.STEP_CHECKED else "reopened"
        stage_number, index = event.details.get("stage"), event.details.get("index")
        label = (f"{stage_number + 1}.{index + 1} "
                 if isinstance(stage_number, int) and isinstance(index, int) else "")
        title = neutralize(str(event.details.get("title", "")))
        lines.append(f"- {format_time(event.at)} — {_who(names, event.actor_id)} {verb} {label}{title}")
    return "\n".join(lines)


def _fields_lines(incident: Incident, names: dict[str, str]) -> list[str]:
    """Info's field line ("Severity: **SEV2** · Customer: ACME") and where the retrospective stands (issue 18)."""
    lines = []
    parts = []
    for field, value in shown_values(incident):
        shown = _who(names, value) if field.kind is FieldKind.USER else limited_markdown(value, one_line=True)
        parts.append(f"{neutralize(field.name)}: **{shown}**")
    if parts:
        lines.append(" · ".join(parts))
    label = retro_label(incident)
    if label is not None:
        when = f", {format_time(incident.retro_published_at)}" if incident.retro_published_at else ""
        lines.append(f"Retrospective: **{label}**{when}")
    return lines


__all__ = ["HistoryPlugin", "ListView", "render_details"]
